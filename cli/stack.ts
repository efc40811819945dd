/** Finds the stack a command talks to: the environment, else the running `dropwarden up`. */
import { hasStackEnv, type StackConfig, stackConfigFromEnv } from '../lib/stack-config.ts';
import { readRunningStack } from '../local/state.ts';
import { UsageError } from './errors.ts';

export function resolveStack(): StackConfig {
  if (hasStackEnv()) return stackConfigFromEnv();
  const running = readRunningStack();
  if (running) return running.config;
  throw new UsageError(
    'no running dropwarden stack found: start one with `npx dropwarden up` (or set the DROPWARDEN_* variables, see `dropwarden config --help`)',
  );
}
