/** Runs the real CLI (`bin/dropwarden.js`) as a user would, and a `dropwarden up` in the background. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../bin/dropwarden.js', import.meta.url));

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface RunningUp {
  env: NodeJS.ProcessEnv;
  child: ChildProcess;
  output: string[];
  stop(): Promise<void>;
}

/**
 * `dropwarden up --no-demo` with its own state dir (or `opts.stateDir`, kept on stop: another
 * `up` may use it after) and a free port; resolves once it prints ready. `opts.partsEnv` is
 * added to the environment of up (and so of its parts).
 */
export async function startUp(extraArgs: string[] = [], opts: { stateDir?: string; partsEnv?: NodeJS.ProcessEnv } = {}): Promise<RunningUp> {
  const given = opts.stateDir;
  const partsEnv = opts.partsEnv ?? {};
  const stateDir = given ?? mkdtempSync(join(tmpdir(), 'dw-up-'));
  const env = { DROPWARDEN_STATE_DIR: stateDir };
  const child = spawn(process.execPath, [CLI, 'up', '--no-demo', '--port', '0', ...extraArgs], {
    env: { ...process.env, ...partsEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => output.push(l));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`up did not print ready in 30 s:\n${output.join('\n')}`)), 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      if (line.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`up exited (${code}):\n${output.join('\n')}`)));
  });
  return {
    env,
    child,
    output,
    async stop() {
      const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r));
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      await exited;
      if (!given) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
