/**
 * The droplet's own scripts, run on this host as the agent will run them in a container:
 * `./startup -p PORT` serves, writes run.pid and logs; `./stop PID` leaves no process behind.
 */
import { pluginEnvironmentFromEnv } from '../../functions/stager/config.ts';
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { alive, freePort, until } from '../support/processes.ts';
import { stage } from '../../functions/stager/phases/stage.ts';
import { renderStartup } from '../../resources/templates/startup.ts';

const APP = new URL('../../samples/hello-python', import.meta.url).pathname;
const cleanup: Array<() => void> = [];
afterEach(() => cleanup.splice(0).forEach((f) => f()));

async function stagedDroplet(command: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'dw-droplet-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'app'));
  cpSync(APP, join(dir, 'app'), { recursive: true });
  await stage({
    dropletDir: dir,
    properties: { meta: { command } },
    log: () => {},
    signal: new AbortController().signal,
    plugins: pluginEnvironmentFromEnv(process.env),
  });
  return dir;
}

function start(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn('./startup', args, { cwd: dir, env: { PATH: process.env.PATH, ...env }, stdio: 'ignore' });
  cleanup.push(() => child.kill('SIGKILL'));
  return child;
}

it('serves on -p PORT, records run.pid and logs, and ./stop ends the whole tree', async () => {
  const dir = await stagedDroplet('python3 app.py');
  const port = await freePort();
  const startup = start(dir, ['-p', String(port)]);
  const body = await until('the app to answer', async () => {
    try {
      return await (await fetch(`http://127.0.0.1:${port}/`)).text();
    } catch {
      return undefined;
    }
  });
  expect(body).toBe('Hello from dropwarden!\n');
  const pid = Number(readFileSync(join(dir, 'run.pid'), 'utf8'));
  expect(alive(pid)).toBe(true);
  expect(readFileSync(join(dir, 'logs', 'stderr.log'), 'utf8')).toContain('GET / HTTP/1.1');
  expect(existsSync(join(dir, 'logs', 'stdout.log'))).toBe(true);

  const exited = new Promise<number | null>((r) => startup.once('exit', (code) => r(code)));
  const stop = spawn('./stop', [String(pid)], { cwd: dir, stdio: 'ignore' });
  expect(await new Promise((r) => stop.once('exit', r))).toBe(0);
  await exited;
  expect(alive(pid)).toBe(false);
  expect(alive(startup.pid!)).toBe(false);
});

it('takes the port from $PORT, then $VCAP_APP_PORT', async () => {
  const dir = await stagedDroplet('echo "port=$PORT vcap=$VCAP_APP_PORT home=$HOME" ; sleep 0.1');
  for (const [env, want] of [
    [{ PORT: '7001' }, '7001'],
    [{ VCAP_APP_PORT: '7002' }, '7002'],
  ] as const) {
    const child = start(dir, [], env);
    expect(await new Promise((r) => child.once('exit', r))).toBe(0);
    const out = readFileSync(join(dir, 'logs', 'stdout.log'), 'utf8')
      .trim()
      .split('\n')
      .at(-1);
    expect(out).toBe(`port=${want} vcap=${want} home=${dir}`);
  }
});

it("exits with the app's own exit status", async () => {
  const dir = await stagedDroplet('exit 7');
  const child = start(dir, ['-p', '1']);
  expect(await new Promise((r) => child.once('exit', r))).toBe(7);
});

it('starts the app even when a .profile.d script ends in a failing command', async () => {
  const dir = await stagedDroplet('echo "profile says $FROM_PROFILE"');
  mkdirSync(join(dir, 'app', '.profile.d'));
  writeFileSync(join(dir, 'app', '.profile.d', 'a.sh'), 'export FROM_PROFILE=yes\n[ -n "$NOT_SET" ]\n');
  const child = start(dir, ['-p', '1']);
  expect(await new Promise((r) => child.once('exit', r))).toBe(0);
  expect(readFileSync(join(dir, 'logs', 'stdout.log'), 'utf8')).toBe('profile says yes\n');
});

it('refuses an environment variable name that would run as shell in startup', () => {
  expect(() => renderStartup({ startCommand: 'true', environment: { 'A=1; touch /tmp/pwned; B': 'x' }, generator: 't' })).toThrow(
    /is not a valid environment variable name/,
  );
});
