/**
 * Runs a plugin's program in its own process group, streaming its output into the task log;
 * when the staging deadline passes, the whole group is killed, not just the direct child.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ExecError, type ExecOptions, PluginError } from '../../plugins/api/types.ts';

/** `prefix` directories first, then the PATH the environment already has. */
function withPath(env: Record<string, string>, prefix: readonly string[] | undefined): Record<string, string> {
  if (!prefix?.length) return env;
  return { ...env, PATH: [...prefix, env.PATH ?? ''].filter(Boolean).join(':') };
}

export function execInGroup(
  file: string,
  args: string[],
  options: ExecOptions & { baseEnv: Readonly<Record<string, string>>; log: (line: string) => void; signal: AbortSignal },
): Promise<void> {
  options.signal.throwIfAborted();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: withPath({ ...options.baseEnv, ...options.env }, options.pathPrefix),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const killGroup = () => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // the group is already gone
        }
      }
    };
    options.signal.addEventListener('abort', killGroup, { once: true });
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => options.log(line));
    }
    child.once('error', (err) => {
      options.signal.removeEventListener('abort', killGroup);
      reject(new PluginError(`could not run ${file}: ${err.message}`));
    });
    child.once('close', (code, sig) => {
      options.signal.removeEventListener('abort', killGroup);
      killGroup(); // leave no stray grandchildren behind
      if (options.signal.aborted) return reject(options.signal.reason);
      if (code === 0) return resolvePromise();
      reject(new ExecError([file, ...args].join(' '), code, sig));
    });
  });
}
