/**
 * An agent start of a droplet, end to end, with the container's limits read back from the
 * kernel's cgroup files, whichever version the host runs: cgroup v1 here, and v2 in the VM suite
 * (`npm run test:vm`, a cgroup2-only guest: the production kernel's mode), where
 * DROPWARDEN_EXPECT_CGROUP2=1 makes it insist on v2.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgroupParentDirs } from '../warden/linux/helpers.ts';
import { AgentHarness, HELLO_APP, skipReason } from './harness.ts';

const h = new AgentHarness('cgroup', { prefix: `ac${process.pid % 10000}`, pool: '100.100.8.0/24', firstPort: 63601 });
const MB = 1024 * 1024;

describe.skipIf(skipReason)("an agent start in the kernel's cgroups", () => {
  let hello: string;
  beforeAll(async () => {
    await h.start();
    [, hello] = await Promise.all([h.startAgent(), h.droplet('hello', HELLO_APP)]);
  });
  afterAll(async () => {
    await h.close();
  });

  it("runs the droplet under the request's memory limit, serves, and leaves no cgroup once stopped", async () => {
    const id = 'cgroup-hello';
    await h.send({ kind: 'start', app_id: id, droplet_uri: hello, memory: 96 });
    const running = await h.events.waitFor(id, (e) => e.state === 'RUNNING', { ms: 600_000 });
    const res = await fetch(running.url!, { signal: AbortSignal.timeout(30_000) });
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^hello from \d+ 0 /);

    const [handle] = await h.handles();
    const dirs = cgroupParentDirs(h.wardend.cgroupParent).map((d) => join(d, handle));
    const v2 = dirs.find((d) => existsSync(join(d, 'memory.max')));
    const v1 = dirs.find((d) => existsSync(join(d, 'memory.limit_in_bytes')));
    if (process.env.DROPWARDEN_EXPECT_CGROUP2 === '1') expect(v2, 'cgroup v2 in this guest').toBeDefined();
    const limit = v2 ? readFileSync(join(v2, 'memory.max'), 'utf8') : readFileSync(join(v1!, 'memory.limit_in_bytes'), 'utf8');
    expect(Number(limit)).toBe(96 * MB);
    // The app's process is in that cgroup, and counted by its pids controller.
    const pidsDir = dirs.find((d) => existsSync(join(d, 'pids.current')))!;
    expect(Number(readFileSync(join(pidsDir, 'pids.current'), 'utf8'))).toBeGreaterThanOrEqual(3);

    await h.send({ kind: 'stop', app_id: id });
    await h.events.waitFor(id, (e) => e.state === 'STOPPED', { ms: 600_000 });
    expect(await h.handles()).toEqual([]);
    for (const d of dirs) expect(existsSync(d), d).toBe(false);
  });
});
