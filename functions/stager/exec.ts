/**
 * Runs a plugin's program in its own process group, streaming its output into the task log;
 * when the staging deadline passes, the whole group is killed, not just the direct child.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ExecError, type ExecOptions, PluginError } from '../../plugins/api/types.ts';

export function execInGroup(
  file: string,
  args: string[],
  options: ExecOptions & { log: (line: string) => void; signal: AbortSignal },
): Promise<void> {
  options.signal.throwIfAborted();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
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
