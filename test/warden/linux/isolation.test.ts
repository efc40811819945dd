import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeccompUnusableError } from '../../../container-host/warden/linux/index.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgroupParentDirs, containerPids, job, skipReason, startWarden, waitFor, type Harness } from './helpers.ts';

describe.skipIf(skipReason)('warden linux backend: isolation', () => {
  let h: Harness;
  let handle: string;
  beforeAll(async () => {
    h = await startWarden('isolation', { pidsLimit: 128 });
    ({ handle } = await h.warden.create({ bindMounts: [] }));
  });
  afterAll(async () => {
    await h?.close();
  });

  it("filters an unprivileged job's system calls: no new user (or other) namespace, no mount, no bpf, no ptrace", async () => {
    const r = await h.warden.run(
      job(
        handle,
        [
          'grep ^Seccomp: /proc/self/status',
          'unshare -Ur id 2>&1 || echo "userns refused $?"',
          'unshare -n true 2>&1 || echo "netns refused $?"',
          // python3 reaches the calls no command-line tool here makes: each answer is the errno name.
          `python3 - <<'PY'
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
for name, nr, args in [('mount', 165, (b'none', b'/tmp', b'tmpfs', 0, None)), ('keyctl', 250, (0, 0, 0, 0, 0)),
                       ('bpf', 321, (0, 0, 0)), ('ptrace', 101, (16, 1, 0, 0)), ('perf_event_open', 298, (0, 0, -1, -1, 0)),
                       ('clone3', 435, (0, 0)), ('fork', 57, ())]:
    ret = libc.syscall(nr, *args)
    print(name, 'ok' if ret >= 0 else errno.errorcode[ctypes.get_errno()])
    if name == 'fork' and ret == 0:
        os._exit(0)
PY`,
        ].join('\n'),
      ),
    );
    expect(r.stderr.toString()).toBe('');
    const lines = r.stdout.toString().trim().split('\n');
    expect(lines[0]).toMatch(/^Seccomp:\s+2$/);
    expect(lines).toContain('unshare: unshare failed: Operation not permitted');
    expect(lines).toContain('userns refused 1');
    expect(lines).toContain('netns refused 1');
    for (const call of ['mount', 'keyctl', 'bpf', 'ptrace', 'perf_event_open']) expect(lines, call).toContain(`${call} EPERM`);
    expect(lines).toContain('clone3 ENOSYS');
    expect(lines).toContain('fork ok');
    // A privileged job (root in the container, as the agent's own steps) runs unfiltered.
    const root = await h.warden.run(job(handle, 'grep ^Seccomp: /proc/self/status', { privileged: true }));
    expect(root.stdout.toString()).toMatch(/^Seccomp:\s+0$/m);
  });

  it('refuses at start a seccomp helper that lets a job create a user namespace', async () => {
    const fake = join(mkdtempSync(join(tmpdir(), 'dw-fake-seccomp-')), 'dw-seccomp');
    writeFileSync(fake, '#!/bin/sh\nexec "$@"\n', { mode: 0o755 });
    const err = await startWarden('isolation-fake', { seccompHelper: fake }).then(
      async (w) => {
        await w.close();
        return undefined;
      },
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(SeccompUnusableError);
    expect(err!.message).toContain(`the seccomp helper ${fake} let a process create a user namespace`);
  });

  it('hides host processes: the container sees its own pid namespace with its init as pid 1', async () => {
    const r = await h.warden.run(job(handle, 'ls /proc | grep -E "^[0-9]+$" | sort -n | tr "\\n" " "; echo; cat /proc/1/cmdline | tr "\\0" " "'));
    const [pids, init] = r.stdout.toString().split('\n');
    const visible = pids.trim().split(' ').map(Number);
    expect(visible[0]).toBe(1);
    expect(visible.length).toBeLessThan(10); // init, its keeper, this job's few processes
    expect(visible).not.toContain(process.pid);
    expect(init).toContain('sleep infinity');
  });

  it('hides host files outside the rootfs and never shows /root, /home or /var of the host', async () => {
    const secret = join(h.dir, 'host-secret');
    writeFileSync(secret, 'top secret\n');
    const r = await h.warden.run(
      job(handle, `cat ${secret} 2>&1; ls /home; ls -A /var; test -e /work && echo work-visible; test -e /etc/shadow && echo shadow-visible; hostname; cat /etc/passwd`, {
        privileged: true,
      }),
    );
    const out = r.stdout.toString();
    expect(out).toContain('No such file or directory');
    expect(out).not.toContain('top secret');
    expect(out).not.toContain('work-visible');
    expect(out).not.toContain('shadow-visible');
    expect(out).toContain(`${handle}\n`);
    expect(out).toMatch(/^vcap:x:\d+:\d+:/m);
    // /home holds only the container user's home.
    expect(out.split('\n')[1]).toBe('vcap');
    const hostPasswd = readFileSync('/etc/passwd', 'utf8');
    for (const line of hostPasswd.split('\n').filter((l) => l && !/^(root|nobody):/.test(l))) expect(out).not.toContain(line);
  });

  it('gives the container only a loopback network of its own', async () => {
    const r = await h.warden.run(job(handle, 'ls /sys/class/net'));
    expect(r.stdout.toString().trim()).toBe('lo');
  });

  it('runs unprivileged jobs as the pool uid with no capabilities and no way to root', async () => {
    const r = await h.warden.run(
      job(
        handle,
        [
          'id -u',
          'grep -E "^(CapEff|CapPrm|CapBnd|NoNewPrivs)" /proc/self/status',
          'su -c id root </dev/null 2>&1 | head -1; echo "su=$?"',
          'setpriv --reuid 0 true 2>&1 | head -1',
          'echo x > /etc/owned 2>&1 || echo etc-readonly',
          'touch /usr/bin/evil 2>&1 || echo usr-readonly',
          'mount -t tmpfs none /tmp 2>&1 || echo no-mount',
        ].join('\n'),
      ),
    );
    const out = r.stdout.toString();
    const uid = Number(out.split('\n')[0]);
    expect(uid).toBeGreaterThanOrEqual(20000);
    expect(out).toContain('CapEff:\t0000000000000000');
    expect(out).toContain('CapPrm:\t0000000000000000');
    expect(out).toContain('CapBnd:\t0000000000000000');
    expect(out).toContain('NoNewPrivs:\t1');
    expect(out).not.toMatch(/uid=0\(root\)/);
    expect(out).toContain('etc-readonly');
    expect(out).toContain('usr-readonly');
    expect(out).toContain('no-mount');

    const root = await h.warden.run(job(handle, 'id -u; touch /usr/bin/evil 2>/dev/null || echo usr-readonly', { privileged: true }));
    expect(root.stdout.toString()).toBe('0\nusr-readonly\n');
  });

  it('contains a fork bomb with the pids limit, and stop still ends it', async () => {
    const { handle: bomb } = await h.warden.create({ bindMounts: [] });
    const { jobId } = await h.warden.spawn(job(bomb, 'f() { f | f & }; f'));
    const pidsFile = (name: string) =>
      cgroupParentDirs(h.cgroupParent)
        .map((d) => join(d, bomb, name))
        .find((f) => existsSync(f))!;
    // The bomb has run into the limit (the kernel counts each refused fork in pids.events) …
    await waitFor(async () => Number(/^max (\d+)/m.exec(readFileSync(pidsFile('pids.events'), 'utf8'))?.[1] ?? 0) > 0, 30_000);
    // … and not past it.
    expect(Number(readFileSync(pidsFile('pids.current'), 'utf8'))).toBeLessThanOrEqual(128);
    // The host keeps working, and so does the rest of wardend.
    expect((await h.warden.run(job(handle, 'echo alive'))).stdout.toString()).toBe('alive\n');
    // Stop answers (the test's timeout is the hang guard; how fast is no unit test's business).
    await h.warden.stop(bomb, { background: false, kill: true });
    // Stop answered once the killed processes were reaped: none still holds a pid.
    const pidsDir = cgroupParentDirs(h.cgroupParent)
      .map((d) => join(d, bomb))
      .find((d) => existsSync(join(d, 'pids.current')))!;
    const tasks = readFileSync(join(pidsDir, existsSync(join(pidsDir, 'tasks')) ? 'tasks' : 'cgroup.threads'), 'utf8')
      .split('\n')
      .filter(Boolean);
    expect(Number(readFileSync(join(pidsDir, 'pids.current'), 'utf8'))).toBe(tasks.length);
    // And none of the bomb's processes is left: in the container, only init and the keeper it
    // spares (the job's supervisor, on the host's side, may still be writing its exit status).
    expect(containerPids(tasks)).toHaveLength(2);
    await h.warden.link(bomb, jobId);
    await h.warden.destroy(bomb);
    expect(h.warden.leftoverCgroups()).not.toContain(bomb);
  });

  it('OOM-kills a memory hog, reports "out of memory" and stops the container', async () => {
    const { handle: hog } = await h.warden.create({ bindMounts: [] });
    expect((await h.warden.limitMemory(hog, 64 * 1024 * 1024)).limitInBytes).toBe(64 * 1024 * 1024);
    const r = await h.warden.run(job(hog, 'x=a; while :; do x="$x$x"; done'));
    expect(r.exitStatus).toBe(137);
    expect(r.info.events).toContain('out of memory');
    expect(r.info.state).toBe('stopped');
    const info = await h.warden.info(hog);
    expect(info.state).toBe('stopped');
    await h.warden.destroy(hog);
  });
});
