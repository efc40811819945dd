import { spawn } from 'node:child_process';
import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResourceLimits } from '../../server/service.ts';
import { HostError } from '../errors.ts';
import { isSameProcess, processStartTime, signalProcess, sleep } from './proc.ts';

const SUPERVISOR = fileURLToPath(new URL('./job.sh', import.meta.url));

export type OutputName = 'stdout' | 'stderr';

export interface JobSpec {
  script: string;
  privileged: boolean;
  rlimits?: ResourceLimits;
  discardOutput: boolean;
}

/** Where a job runs: the container's init to enter, its cgroup, its unprivileged identity. */
export interface JobContainer {
  initPid: number;
  cgroupProcs: string[];
  uid: number;
  user: { name: string; home: string };
}

/** ResourceLimits field → prlimit option; each sets soft and hard to the value. */
const PRLIMIT: Record<keyof ResourceLimits, string> = {
  as: 'as', core: 'core', cpu: 'cpu', data: 'data', fsize: 'fsize', locks: 'locks', memlock: 'memlock',
  msgqueue: 'msgqueue', nice: 'nice', nofile: 'nofile', nproc: 'nproc', rss: 'rss', rtprio: 'rtprio',
  sigpending: 'sigpending', stack: 'stack',
};

export function prlimitOptions(rlimits: ResourceLimits | undefined): string[] {
  if (!rlimits) return [];
  const out: string[] = [];
  for (const key of Object.keys(PRLIMIT) as Array<keyof ResourceLimits>) {
    const value = rlimits[key];
    if (value !== undefined && value !== null) out.push(`--${PRLIMIT[key]}=${value}`);
  }
  return out;
}

/**
 * One job: a detached supervisor (job.sh) runs the script in the container and leaves output
 * and exit status in the job's depot directory, so a job can be found again from that alone.
 */
export class Job {
  readonly id: number;
  readonly dir: string;
  readonly discardOutput: boolean;
  exitStatus: number | undefined;
  readonly exited: Promise<number>;

  private constructor(id: number, dir: string, discardOutput: boolean, exited: Promise<number>) {
    this.id = id;
    this.dir = dir;
    this.discardOutput = discardOutput;
    this.exited = exited.then((status) => (this.exitStatus = status));
  }

  static async start(id: number, dir: string, spec: JobSpec, container: JobContainer): Promise<Job> {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'spec.json'), JSON.stringify({ discardOutput: spec.discardOutput, privileged: spec.privileged }));
    const child = spawn('/bin/bash', [SUPERVISOR], {
      detached: true,
      stdio: 'ignore',
      env: {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        DW_JOB_DIR: dir,
        DW_CGROUP_PROCS: container.cgroupProcs.join('\n'),
        DW_INIT_PID: String(container.initPid),
        DW_PRIVILEGED: spec.privileged ? '1' : '0',
        DW_UID: String(container.uid),
        DW_USER: container.user.name,
        DW_HOME: container.user.home,
        DW_DISCARD: spec.discardOutput ? '1' : '0',
        DW_RLIMITS: prlimitOptions(spec.rlimits).join(' '),
        DW_SCRIPT: spec.script,
      },
    });
    const exited = new Promise<number>((resolve, reject) => {
      child.on('error', (e) => reject(new HostError('starting the job supervisor', e.message)));
      child.on('exit', (code, signal) => {
        readExitStatus(dir).then((status) => resolve(status ?? (signal ? 128 + signalNumber(signal) : (code ?? 255))), reject);
      });
    });
    // Not unref'd: someone awaiting the job must keep the process alive until it ends.
    if (child.pid) {
      await writeFile(join(dir, 'supervisor'), `${child.pid} ${processStartTime(child.pid) ?? ''}`);
    }
    return new Job(id, dir, spec.discardOutput, exited);
  }

  /** A job left by an earlier daemon: its supervisor (if alive) still writes `exit_status`. */
  static async adopt(id: number, dir: string): Promise<Job> {
    const spec = JSON.parse(await readFile(join(dir, 'spec.json'), 'utf8').catch(() => '{}')) as { discardOutput?: boolean };
    const [pid, startTime] = (await readFile(join(dir, 'supervisor'), 'utf8').catch(() => '')).split(' ');
    const exited = (async () => {
      for (;;) {
        const status = await readExitStatus(dir);
        if (status !== undefined) return status;
        if (!isSameProcess(Number(pid), startTime)) return (await readExitStatus(dir)) ?? 255;
        await sleep(100);
      }
    })();
    return new Job(id, dir, spec.discardOutput ?? false, exited);
  }

  get running(): boolean {
    return this.exitStatus === undefined;
  }

  async outputSize(name: OutputName): Promise<number> {
    if (this.discardOutput) return 0;
    return stat(join(this.dir, name)).then((s) => s.size, () => 0);
  }

  /** Kills the job's process group (inside the container), not its supervisor. */
  async kill(): Promise<void> {
    const pgid = Number((await readFile(join(this.dir, 'pgid'), 'utf8').catch(() => '')).trim());
    if (pgid > 1) signalProcess(-pgid, 'SIGKILL');
  }

  /** Bytes [offset, min(size, cap)) of one output. */
  async read(name: OutputName, offset: number, cap: number): Promise<Buffer> {
    if (this.discardOutput || offset >= cap) return Buffer.alloc(0);
    const fh = await open(join(this.dir, name), 'r').catch(() => undefined);
    if (!fh) return Buffer.alloc(0);
    try {
      const size = Math.min((await fh.stat()).size, cap);
      if (size <= offset) return Buffer.alloc(0);
      const buf = Buffer.alloc(size - offset);
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

async function readExitStatus(dir: string): Promise<number | undefined> {
  const text = await readFile(join(dir, 'exit_status'), 'utf8').catch(() => undefined);
  return text === undefined || text.trim() === '' ? undefined : Number(text.trim());
}

function signalNumber(signal: NodeJS.Signals): number {
  return constants.signals[signal] ?? 9;
}
