/**
 * Stage a fixture app through the real stage phase into a temp droplet, start it with
 * `./startup -p PORT` on this host, GET it, and `./stop` it, checking that nothing survives.
 */
import { pluginEnvironmentFromEnv } from '../../functions/stager/config.ts';
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StagingInfo, StagingProperties } from '../../contracts/staging.ts';
import { freePort, until } from '../support/processes.ts';
import { stage } from '../../functions/stager/phases/stage.ts';

export const appPath = (name: string) => new URL(`../apps/${name}`, import.meta.url).pathname;

const cleanups: Array<() => void> = [];
/** Call from afterEach: kills what a test started and removes its droplets. */
export function cleanup(): void {
  for (const f of cleanups.splice(0).reverse()) {
    try {
      f();
    } catch {
      // best effort
    }
  }
}

export interface Staged {
  dir: string;
  info: StagingInfo;
  log: string[];
}

export async function stageApp(fixture: string, properties: StagingProperties = {}, prepare?: (appDir: string) => void): Promise<Staged> {
  const dir = mkdtempSync(join(tmpdir(), 'dw-plugin-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'app'));
  cpSync(appPath(fixture), join(dir, 'app'), { recursive: true });
  prepare?.(join(dir, 'app'));
  const log: string[] = [];
  const info = await stage({
    dropletDir: dir,
    properties,
    log: (m) => log.push(m),
    signal: new AbortController().signal,
    plugins: pluginEnvironmentFromEnv(process.env),
  });
  return { dir, info, log };
}

/** The error message a staging fails with (the test fails if it succeeds). */
export async function stagingError(fixture: string, properties: StagingProperties = {}, prepare?: (appDir: string) => void): Promise<string> {
  try {
    await stageApp(fixture, properties, prepare);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`staging ${fixture} succeeded`);
}

/** Live (non-zombie) processes whose session is `sid` (startup puts the app in its own session). */
export function sessionMembers(sid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const fields = readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1].split(' ');
      if (fields[0] !== 'Z' && Number(fields[3]) === sid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export interface Running {
  port: number;
  pid: number;
  startup: ChildProcess;
  get(path?: string): Promise<Response>;
}

export async function startDroplet(dir: string): Promise<Running> {
  const port = await freePort();
  const startup = spawn('./startup', ['-p', String(port)], {
    cwd: dir,
    env: { PATH: process.env.PATH, LANG: 'C.UTF-8' },
    stdio: 'ignore',
  });
  cleanups.push(() => {
    const pid = Number(readFileSync(join(dir, 'run.pid'), 'utf8'));
    for (const p of sessionMembers(pid)) process.kill(p, 'SIGKILL');
  });
  cleanups.push(() => startup.kill('SIGKILL'));
  const exited = new Promise<void>((_, reject) =>
    startup.once('exit', (code) => {
      let stderr = '';
      try {
        stderr = readFileSync(join(dir, 'logs', 'stderr.log'), 'utf8');
      } catch {}
      reject(new Error(`startup exited (${code}) before the app answered:\n${stderr}`));
    }),
  );
  exited.catch(() => {});
  const answered = until(
    'the app to answer',
    async () => {
      try {
        return await fetch(`http://127.0.0.1:${port}/`);
      } catch {
        return undefined;
      }
    },
    20_000,
  );
  await Promise.race([answered, exited]);
  const pid = Number(readFileSync(join(dir, 'run.pid'), 'utf8'));
  return { port, pid, startup, get: (path = '/') => fetch(`http://127.0.0.1:${port}${path}`) };
}

/** `./stop PID`; resolves once startup has exited and no process of the app's session is left. */
export async function stopDroplet(dir: string, running: Running): Promise<void> {
  const exited = new Promise((r) => (running.startup.exitCode !== null ? r(null) : running.startup.once('exit', r)));
  const stop = spawn('./stop', [String(running.pid)], { cwd: dir, stdio: 'ignore', env: { PATH: process.env.PATH, STOP_GRACE_SECONDS: '5' } });
  const code = await new Promise((r) => stop.once('exit', r));
  if (code !== 0) throw new Error(`./stop exited with ${code}`);
  await exited;
  const left = sessionMembers(running.pid);
  if (left.length) throw new Error(`processes left behind after ./stop: ${left.join(', ')}`);
}
