import { Command } from 'commander';
import { setUpHost } from '../../local/host-setup.ts';
import { PrerequisiteError } from '../../local/prerequisites.ts';
import { SetupBuildError } from '../../local/setup-errors.ts';
import { EXIT_FAILED, EXIT_USAGE } from '../errors.ts';

/**
 * `dropwarden setup`: what `up` does first, by itself (`npm test` runs it before the suites).
 * Installs the missing Debian packages (as root, with apt-get, never upgrading one that is
 * installed) and builds the missing runtime bundles; says what it did, or exactly what to run.
 */
export function setupCommand(): Command {
  return new Command('setup')
    .description('Install what this machine lacks for `up` and the tests: Debian packages (as root, via apt-get) and the runtime bundles')
    .option('--best-effort', 'report what cannot be set up and exit 0 (npm test: the suites that need it then skip, which CI counts as a failure)')
    .action(async (opts: { bestEffort?: boolean }) => {
      const say = (line: string) => process.stderr.write(`dropwarden: ${line}\n`);
      try {
        await setUpHost(say, process.env);
        say('this machine is set up for the local stack and the tests');
      } catch (err) {
        if (!(err instanceof PrerequisiteError || err instanceof SetupBuildError)) throw err;
        say(err.message);
        if (opts.bestEffort) say('going on without it (--best-effort): the tests that need it will say so');
        else process.exitCode = err instanceof PrerequisiteError ? EXIT_USAGE : EXIT_FAILED;
      }
    });
}
