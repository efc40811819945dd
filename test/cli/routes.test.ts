/**
 * Routes on a running `dropwarden up` (DESIGN §7), as issue "Routes" accepts them: push prints a
 * route that answers; a crash and a restart keep it; two instances share it; a re-push of changed
 * code under a client's loop fails no request; stop answers 404/503 at once; the router,
 * restarted, learns the routes again; `config` and `apps` show them.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPrerequisites, realHost, PrerequisiteError } from '../../local/prerequisites.ts';
import { type RunningUp, runCli, startUp } from '../support/cli.ts';
import { alive, until } from '../support/processes.ts';
import { routeGet } from '../support/routes.ts';

const APP = new URL('../apps/python-routes', import.meta.url).pathname;
const host = checkPrerequisites(realHost(process.env));
const skip = host.problems.length || host.packages.length ? new PrerequisiteError(host).message : undefined;
if (skip) console.warn(`[cli/routes] skipping the routes tests: ${skip}`);

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skip)('routes on a running up', () => {
  let up: RunningUp;
  let stateDir: string;
  let routes: string;
  const work = mkdtempSync(join(tmpdir(), 'dw-routes-'));

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'dw-up-routes-'));
    up = await startUp([], { stateDir, partsEnv: { DROPWARDEN_ROUTER_PORT: '0' } });
    const config = JSON.parse((await runCli(['config', '--json'], up.env)).stdout);
    routes = config.routes;
    expect(routes).toMatch(/^http:\/\/\{app\}\.localhost:\d+$/);
  }, 90_000);
  afterAll(async () => {
    await up?.stop();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it('push returns the route; /crash kills the app and the same route answers again within 15 s', async () => {
    const push = await runCli(['push', APP, '--app-id', 'py-route', '--json'], up.env, 120_000);
    expect(push.code, push.stderr).toBe(0);
    const pushed = lastJson(push.stdout);
    const url = routes.replace('{app}', 'py-route');
    expect(pushed).toMatchObject({
      app_id: 'py-route',
      url,
      instances: [{ state: 'RUNNING', host: '127.0.0.1', url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) }],
    });
    expect(await routeGet(url)).toMatchObject({ status: 200, body: 'v1 0\n' });
    const plain = await runCli(['apps'], up.env);
    expect(plain.stdout).toMatch(new RegExp(`py-route\\s+${url.replace(/[.]/g, '\\.')}\\s+0\\s+RUNNING`));
    expect(lastJson((await runCli(['apps', '--json'], up.env)).stdout).apps.find((a: { app_id: string }) => a.app_id === 'py-route').route).toBe(url);

    await routeGet(url, { path: '/crash', keepAlive: false }).catch(() => undefined);
    const crashedAt = Date.now();
    const seen: number[] = [];
    await until(
      'the route answering again after the crash',
      async () => {
        const res = await routeGet(url, { timeoutMs: 2000, keepAlive: false }).catch(() => undefined);
        if (res) seen.push(res.status);
        return res?.status === 200 ? res : undefined;
      },
      15_000,
    );
    expect(Date.now() - crashedAt).toBeLessThan(15_000);
    // While it restarted, the route said 503 (with Retry-After), never 404 and never hung.
    expect(seen.every((s) => s === 200 || s === 503)).toBe(true);
  }, 180_000);

  it('two instances (of a numeric app id) serve through the one route', async () => {
    const push = await runCli(['push', APP, '--app-id', '42', '--instances', '2', '--json'], up.env, 120_000);
    expect(push.code, push.stderr).toBe(0);
    const pushed = lastJson(push.stdout);
    expect(pushed.url).toBe(routes.replace('{app}', '42'));
    expect(pushed.instances).toHaveLength(2);
    const bodies = new Set<string>();
    for (let i = 0; i < 10; i++) bodies.add((await routeGet(pushed.url)).body);
    expect([...bodies].sort()).toEqual(['v1 0\n', 'v1 1\n']);
    expect((await runCli(['stop', '42'], up.env)).code).toBe(0);
  }, 180_000);

  it("a re-push of changed code under a client's loop of GETs fails no request; the new code answers once push returns", async () => {
    const url = routes.replace('{app}', 'py-route');
    const v2 = join(work, 'v2');
    cpSync(APP, v2, { recursive: true });
    writeFileSync(join(v2, 'VERSION'), 'v2\n');
    let looping = true;
    // `at`: when the request was sent. One sent before push returned may be answered by the old code.
    const results: Array<{ at: number; status: number | string; body?: string }> = [];
    const loop = (async () => {
      while (looping) {
        const at = Date.now();
        const r = await routeGet(url, { timeoutMs: 10_000 }).then(
          (res) => ({ at, status: res.status, body: res.body }),
          (err: Error) => ({ at, status: err.message }),
        );
        results.push(r);
      }
    })();
    const push = await runCli(['push', v2, '--app-id', 'py-route', '--json'], up.env, 120_000);
    const returnedAt = Date.now();
    await sleep(500);
    looping = false;
    await loop;
    expect(push.code, push.stderr).toBe(0);
    const failed = results.filter((r) => r.status !== 200);
    expect(failed, JSON.stringify(failed.slice(0, 5))).toEqual([]);
    expect(results.length).toBeGreaterThan(20);
    const after = results.filter((r) => r.at > returnedAt);
    expect(after.length).toBeGreaterThan(0);
    expect(
      after.every((r) => r.body === 'v2 0\n'),
      JSON.stringify(after.slice(0, 3)),
    ).toBe(true);
    expect(results.some((r) => r.body === 'v1 0\n')).toBe(true);
  }, 180_000);

  it('the router, killed, is started again on its port and learns the routes again', async () => {
    const url = routes.replace('{app}', 'py-route');
    const state = () => JSON.parse(readFileSync(join(stateDir, 'stack.json'), 'utf8')) as { parts: Record<string, number> };
    const pid = state().parts.router;
    expect(alive(pid)).toBe(true);
    process.kill(pid, 'SIGKILL');
    await until('a new router', () => (state().parts.router !== pid ? true : undefined), 15_000);
    await until(
      'the route answering through the new router',
      async () => {
        const res = await routeGet(url, { timeoutMs: 2000, keepAlive: false }).catch(() => undefined);
        return res?.status === 200 ? res : undefined;
      },
      10_000,
    );
    expect(up.output.join('\n')).toContain('starting it again on port');
  }, 60_000);

  it('stop makes the route answer 503 or 404 at once, never hang; 404 naming the app once the router knows it is gone', async () => {
    const url = routes.replace('{app}', 'py-route');
    const stop = await runCli(['stop', 'py-route'], up.env);
    expect(stop.code, stop.stderr).toBe(0);
    // A router restarted moments ago (the test before) says 503 "still learning" for an app it does not know, for a few seconds.
    const res = await until(
      '404 for the stopped app',
      async () => {
        const started = Date.now();
        const r = await routeGet(url, { timeoutMs: 2000, keepAlive: false });
        expect(Date.now() - started).toBeLessThan(1000);
        expect([404, 503]).toContain(r.status);
        return r.status === 404 ? r : undefined;
      },
      10_000,
    );
    expect(res.body).toContain('no app "py-route"');
  }, 60_000);
});
