/**
 * One state dir, `dropwarden up` after `up` (README "The local stack", DESIGN §12 and §11): a
 * second `up` is refused (exit 2) while one runs; pushing the same app id again with the same
 * code leaves its instance alone, with changed code replaces it; and after an `up` killed with
 * SIGKILL the next one stops the parts it left running (their pids are in the state file),
 * while the app's container stays and comes back: restored by the new wardend, adopted by the
 * new agent, the same instance answering at the same URL.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningUp, runCli, startUp } from '../support/cli.ts';
import { alive, until } from '../support/processes.ts';
import { routeGet } from '../support/routes.ts';
import { missingHostFeature } from '../warden/linux/helpers.ts';

const NODE_APP = new URL('../apps/node-hello', import.meta.url).pathname;
const skip = process.getuid?.() !== 0 ? 'needs root' : missingHostFeature();

interface Pushed {
  app_id: string;
  droplet: { uri: string };
  instances: Array<{ instance_id: string; state: string; url: string }>;
}
interface Listed {
  apps: Array<{ app_id: string; instances: Array<{ instance_id: string; state: string; url: string | null; handle: string }> }>;
}
const lastJson = (out: string) => JSON.parse(out.trim().split('\n').at(-1)!);

describe.skipIf(skip)('up again, on the same state dir', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'dw-up-again-'));
  const app = mkdtempSync(join(tmpdir(), 'dw-repush-'));
  let up: RunningUp | undefined;
  let v2: Pushed;

  beforeAll(async () => {
    cpSync(NODE_APP, app, { recursive: true });
    up = await startUp([], { stateDir });
  }, 90_000);
  afterAll(async () => {
    await up?.stop();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(app, { recursive: true, force: true });
  }, 90_000);

  const apps = async (): Promise<Listed['apps'][number] | undefined> =>
    (lastJson((await runCli(['apps', '--json'], up!.env)).stdout) as Listed).apps.find((a) => a.app_id === 'repush');
  const push = async (): Promise<Pushed> => {
    const run = await runCli(['push', app, '--app-id', 'repush', '--json'], up!.env, 120_000);
    expect(run.code, run.stderr).toBe(0);
    return lastJson(run.stdout) as Pushed;
  };
  const body = async (url: string) => (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();

  it('refuses a second up while the first runs: exit 2, naming the state dir and the pid', async () => {
    const second = await runCli(['up', '--no-demo', '--port', '0'], up!.env, 60_000);
    expect(second.code).toBe(2);
    expect(second.stderr + second.stdout).toContain(`a dropwarden up is already running with the state dir ${stateDir} (pid ${up!.child.pid})`);
    // The first is untouched.
    expect(up!.child.exitCode).toBeNull();
    expect((await runCli(['config', '--json'], up!.env)).code).toBe(0);
  }, 90_000);

  it('a re-push of the same code leaves the instance alone; of changed code, replaces it', async () => {
    const v1 = await push();
    expect(await body(v1.instances[0].url)).toBe('Hello from node (production)\n');
    const same = await push();
    expect(same.droplet.uri).toBe(v1.droplet.uri);
    expect(same.instances.map((i) => i.instance_id)).toEqual(v1.instances.map((i) => i.instance_id));

    const server = join(app, 'server.js');
    writeFileSync(server, readFileSync(server, 'utf8').replace('Hello from node', 'Hello again from node'));
    v2 = await push();
    expect(v2.droplet.uri).not.toBe(v1.droplet.uri);
    expect(v2.instances).toHaveLength(1);
    expect(v2.instances[0].instance_id).not.toBe(v1.instances[0].instance_id);
    expect(await body(v2.instances[0].url)).toBe('Hello again from node (production)\n');
    // The old instance is gone (new, then old stops): only the new one is listed.
    const listed = await until(
      'the old instance to leave',
      async () => {
        const a = await apps();
        return a && a.instances.length === 1 ? a : undefined;
      },
      30_000,
    );
    expect(listed.instances.map((i) => [i.instance_id, i.state])).toEqual([[v2.instances[0].instance_id, 'RUNNING']]);
  }, 360_000);

  it('after up is SIGKILLed, the next up stops its left parts and adopts the running instance', async () => {
    const state = JSON.parse(readFileSync(join(stateDir, 'stack.json'), 'utf8')) as { pid: number; parts: Record<string, number> };
    const parts = Object.values(state.parts);
    expect(Object.keys(state.parts).sort()).toEqual(['agent', 'emulator', 'router', 'stager', 'wardend']);
    const killed = up!;
    const exited = new Promise((r) => killed.child.once('exit', r));
    killed.child.kill('SIGKILL');
    await exited;
    // Its parts run on, each in its own process group.
    for (const pid of parts) expect(alive(pid), `part ${pid}`).toBe(true);

    up = await startUp([], { stateDir });
    for (const pid of parts) expect(alive(pid), `left part ${pid}`).toBe(false);
    const adopted = await until(
      'the instance to be RUNNING under the new agent',
      async () => {
        const a = await apps();
        return a?.instances.find((i) => i.state === 'RUNNING');
      },
      60_000,
    );
    expect(adopted.instance_id).toBe(v2.instances[0].instance_id);
    expect(adopted.url).toBe(v2.instances[0].url);
    expect(await body(adopted.url!)).toBe('Hello again from node (production)\n');
    expect((await apps())!.instances).toHaveLength(1);
    // The new up's router learnt the adopted instance's route (DESIGN §7).
    const config = JSON.parse((await runCli(['config', '--json'], up.env)).stdout) as { routes: string };
    const route = await until(
      'the route through the new router',
      async () => {
        const res = await routeGet(config.routes.replace('{app}', v2.app_id)).catch(() => undefined);
        return res?.status === 200 ? res : undefined;
      },
      10_000,
    );
    expect(route.body).toBe('Hello again from node (production)\n');
  }, 180_000);
});
