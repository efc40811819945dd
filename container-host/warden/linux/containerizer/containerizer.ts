import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BindMount } from '../../server/service.ts';
import type { ContainerCgroup } from '../cgroups/types.ts';
import { HostError } from '../errors.ts';
import type { RootfsPlan } from '../volumizer/volumizer.ts';
import { childPids, isSameProcess, pidNamespace, processStartTime, signalProcess, sleep } from './proc.ts';

const INIT_SCRIPT = fileURLToPath(new URL('./init.sh', import.meta.url));
const NAMESPACES = ['--mount', '--pid', '--uts', '--ipc', '--net'];
/** init.sh says `ready` within a second or two; one that has not by then is hung. */
const INIT_START_TIMEOUT_MS = 60_000;

export interface StartSpec {
  handle: string;
  dir: string;
  plan: RootfsPlan;
  uid: number;
  bindMounts: BindMount[];
  cgroup: ContainerCgroup;
}

/** The container's init as the host sees it. */
export interface InitProcess {
  initPid: number;
  initStartTime: string;
  /** tini's one child of its own (it exits when that does): spared by stop. */
  keeperPid: number;
}

/** Processes, namespaces and the container's init: the part that makes a container run. */
export interface Containerizer {
  start(spec: StartSpec): Promise<InitProcess>;
  isRunning(init: InitProcess): boolean;
  /** Signals every process of the container but its init: SIGTERM, then SIGKILL after timeoutMs. */
  stopProcesses(init: InitProcess, cgroup: ContainerCgroup, opts: { kill: boolean; timeoutMs: number }): Promise<void>;
  /** Kills the init (and so the whole pid namespace and its mounts) and empties the cgroup. */
  destroy(init: InitProcess | undefined, cgroup: ContainerCgroup): Promise<void>;
}

export class NamespaceContainerizer implements Containerizer {
  readonly #tini: string;
  readonly #user: { name: string; home: string };

  constructor(opts: { tiniPath: string; user: { name: string; home: string } }) {
    this.#tini = opts.tiniPath;
    this.#user = opts.user;
  }

  async start(spec: StartSpec): Promise<InitProcess> {
    const env = {
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      DW_DIR: spec.dir,
      DW_BASE: spec.plan.base,
      DW_UPPER: spec.plan.upper ?? `${spec.dir}/upper`,
      DW_WORK: spec.plan.work ?? `${spec.dir}/work`,
      DW_HOST_BINDS: spec.plan.hostBinds.join('\n'),
      DW_DEV: spec.plan.dev,
      DW_BINDS: spec.bindMounts.map((b) => `${b.mode}\t${b.srcPath}\t${b.dstPath}`).join('\n'),
      DW_HOSTNAME: spec.handle,
      DW_USER: this.#user.name,
      DW_HOME: this.#user.home,
      DW_UID: String(spec.uid),
      DW_GID: String(spec.uid),
      DW_TINI: this.#tini,
      DW_CGROUP_PROCS: spec.cgroup.procsFiles.join('\n'),
    };
    const child = spawn('unshare', [...NAMESPACES, '--fork', '--propagation', 'private', '--', '/bin/bash', INIT_SCRIPT], {
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let timer: NodeJS.Timeout | undefined;
    const initPid = await new Promise<number>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /^ready (\d+)$/m.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.stderr.on('data', (b: Buffer) => {
        err += b.toString();
      });
      child.on('error', (e) => reject(new HostError('starting the container init', e.message)));
      child.on('close', (code) => reject(new HostError('starting the container init', `exited ${code}: ${err}`)));
      // A hung init (a mount that never returns) must not hang create: end its process group.
      timer = setTimeout(() => {
        if (child.pid) signalProcess(-child.pid, 'SIGKILL');
        reject(new HostError('starting the container init', `not ready after ${INIT_START_TIMEOUT_MS / 1000} s: ${err}`));
      }, INIT_START_TIMEOUT_MS);
    }).finally(() => clearTimeout(timer));
    child.stdout.destroy();
    child.stderr.destroy();
    child.unref();

    const initStartTime = processStartTime(initPid);
    if (!initStartTime) throw new HostError('starting the container init', `init ${initPid} died right after starting`);
    let keeperPid = 0;
    for (let i = 0; i < 200 && !keeperPid; i++) {
      keeperPid = childPids(initPid)[0] ?? 0;
      if (!keeperPid) await sleep(1);
    }
    return { initPid, initStartTime, keeperPid };
  }

  isRunning(init: InitProcess): boolean {
    return isSameProcess(init.initPid, init.initStartTime);
  }

  /** Host-side helpers (job supervisors, nsenter) share the cgroup but not the pid namespace. */
  #containerProcesses(init: InitProcess, cgroup: ContainerCgroup): number[] {
    const ns = pidNamespace(init.initPid);
    if (!ns) return [];
    return cgroup.pids().filter((p) => p !== init.initPid && p !== init.keeperPid && pidNamespace(p) === ns);
  }

  async stopProcesses(init: InitProcess, cgroup: ContainerCgroup, opts: { kill: boolean; timeoutMs: number }): Promise<void> {
    if (!this.isRunning(init)) return;
    if (!opts.kill) {
      for (const pid of this.#containerProcesses(init, cgroup)) signalProcess(pid, 'SIGTERM');
      const deadline = Date.now() + opts.timeoutMs;
      while (Date.now() < deadline && this.#containerProcesses(init, cgroup).length) await sleep(20);
    }
    // No forks while we kill (a fork bomb would otherwise refill what we empty); init and its
    // keeper are already running, so blocking forks costs them nothing.
    const restore = cgroup.blockForks();
    try {
      let round = 0;
      for (; ; round++) {
        const left = this.#containerProcesses(init, cgroup);
        if (!left.length) break;
        if (round >= 500) throw new HostError('stopping container processes', 'processes kept appearing after 500 rounds of SIGKILL');
        for (const pid of left) signalProcess(pid, 'SIGKILL');
        await sleep(round < 10 ? 1 : 10);
      }
      // Killed is not gone: a fork bomb leaves hundreds of zombies for init to reap, and they
      // hold pids until it has. Stop answers once they are released.
      for (let wait = 0; cgroup.exitedTasks() > 0; wait++) {
        if (wait >= 1000) throw new HostError('stopping container processes', `${cgroup.exitedTasks()} killed processes were still not reaped after 10 s`);
        await sleep(10);
      }
    } finally {
      restore();
    }
  }

  async destroy(init: InitProcess | undefined, cgroup: ContainerCgroup): Promise<void> {
    // pid 1 dying makes the kernel kill the rest of its pid namespace; its mounts go with it.
    if (init && this.isRunning(init)) signalProcess(init.initPid, 'SIGKILL');
    for (let round = 0; round < 1000; round++) {
      const left = cgroup.pids();
      if (!left.length) break;
      for (const pid of left) signalProcess(pid, 'SIGKILL');
      await sleep(round < 20 ? 1 : 10);
    }
    for (let attempt = 0; ; attempt++) {
      try {
        cgroup.remove();
        return;
      } catch (e) {
        if (attempt >= 100) throw e;
        await sleep(attempt < 20 ? 1 : 20);
      }
    }
  }
}
