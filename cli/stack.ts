/** Finds the stack a command talks to: the environment, else the running `dropwarden up`. */
import { hasStackEnv, type StackConfig, stackConfigFromEnv } from '../lib/stack-config.ts';
import { readRunningStack, stateDir } from '../local/state.ts';
import { UsageError } from './errors.ts';

/** `env`: the command's environment (commands are the CLI's composition roots). */
export function resolveStack(env: NodeJS.ProcessEnv): StackConfig {
  if (hasStackEnv(env)) return stackConfigFromEnv(env);
  const running = readRunningStack(stateDir(env));
  if (running) return running.config;
  throw new UsageError('no running dropwarden stack found: start one with `npx dropwarden up` (or set the DROPWARDEN_* variables, see `dropwarden config --help`)');
}
