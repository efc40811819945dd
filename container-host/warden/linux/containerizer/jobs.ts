import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { watch } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ResourceLimits } from '../../server/service.ts';
import { HostError, HostRequirementError } from '../errors.ts';
import { runHost } from '../host-command.ts';
import { isSameProcess } from './proc.ts';

const SPAWNER = fileURLToPath(new URL('./spawner.sh', import.meta.url));

export class OutputCapperUnusableError extends HostRequirementError {
  override name = 'OutputCapperUnusableError';
}

/**
 * What job.sh's output cap rests on, tried in the host's bash: `stdbuf -o0 head -c N` reads no
 * further than N (the byte after the cap stays in the pipe, which is how going over is seen) and
 * writes each read at once; and a `read -t` on a pipe opened read-write times out (the ticks
 * of its wait for the cappers).
 */
const CAPPER_PROBE = String.raw`
[ -e /dev/fd/0 ] || { echo "/dev/fd is missing (bash's process substitution opens /dev/fd/N: link /dev/fd to /proc/self/fd, as systemd and Docker do)"; exit 1; }
f=$1/capped
rest=$(printf abcdefgh | { /usr/bin/stdbuf -o0 /usr/bin/head -c 5 > "$f"; IFS= read -r rest; printf %s "$rest"; })
IFS= read -r kept < "$f"
[ "$kept/$rest" = abcde/fgh ] || { echo "head -c 5 of abcdefgh kept '$kept' and left '$rest' (wanted abcde, fgh)"; exit 1; }
exec {tick}<> <(:)
read -r -t 0.01 -u "$tick" _; r=$?
[ $r -gt 128 ] || { echo "read -t on a pipe opened read-write ended with $r, not a timeout"; exit 1; }
exec {w}> >(/usr/bin/stdbuf -o0 /usr/bin/head -c 10 > "$f.2")
printf abc >&$w
for ((i = 0; i < 500; i++)); do
  got=''; IFS= read -r -N 3 got 2> /dev/null < "$f.2"
  [ "$got" = abc ] && exit 0
  read -r -t 0.01 -u "$tick" _
done
echo "head -c under stdbuf -o0 held 3 bytes back for 5 s (it must write each read at once)"; exit 1
`;

/** Runs the probe once (wardend's start): a host whose tools would not hold the cap is refused. */
export async function checkOutputCapper(scratchDir: string): Promise<void> {
  const dir = await mkdtemp(join(scratchDir, 'dw-capper-'));
  try {
    const r = await runHost('checking the output cap', ['/bin/bash', '-c', CAPPER_PROBE, 'probe', dir], { allowFailure: true });
    if (r.code !== 0) {
      throw new OutputCapperUnusableError(
        `job output could not be capped on this host: ${(r.stdout.toString() + r.stderr.toString()).trim()} (job.sh needs coreutils' head and stdbuf, and bash)`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
/** A supervisor that has not said who it is by then was never started. */
const START_TIMEOUT_MS = 30_000;
/** inotify says when exit_status is written; this catches what it cannot (a supervisor killed). */
const RECHECK_MS = 1000;

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
  /** What an unprivileged job starts under ('' for none). */
  seccompHelper: string;
  /** Bytes each of stdout and stderr may hold: job.sh kills the job at one more. */
  outputCap: number;
}

/** ResourceLimits field → prlimit option; each sets soft and hard to the value. */
const PRLIMIT: Record<keyof ResourceLimits, string> = {
  as: 'as',
  core: 'core',
  cpu: 'cpu',
  data: 'data',
  fsize: 'fsize',
  locks: 'locks',
  memlock: 'memlock',
  msgqueue: 'msgqueue',
  nice: 'nice',
  nofile: 'nofile',
  nproc: 'nproc',
  rss: 'rss',
  rtprio: 'rtprio',
  sigpending: 'sigpending',
  stack: 'stack',
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

/** Quoted for bash: any bytes but NUL survive. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Starts job supervisors through spawner.sh, a small shell kept running beside the daemon:
 * forking it is cheap, while forking the daemon costs page-table copies that grow with its RSS
 * (~3 ms a job at 90 MB here). Started on first use, again if it dies; ended by close().
 */
export class SupervisorLauncher {
  #spawner?: ChildProcessByStdio<Writable, null, null>;

  launch(jobDir: string): void {
    if (!this.#spawner || this.#spawner.exitCode !== null || this.#spawner.signalCode !== null || !this.#spawner.stdin.writable) {
      const spawner = spawn('/bin/bash', [SPAWNER], { stdio: ['pipe', 'ignore', 'ignore'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
      spawner.stdin.on('error', () => undefined); // a dead spawner: the next launch starts another
      spawner.on('error', () => undefined);
      spawner.unref();
      (spawner.stdin as Writable & { unref?: () => void }).unref?.();
      this.#spawner = spawner;
    }
    this.#spawner.stdin.write(`${jobDir}\n`);
  }

  close(): void {
    this.#spawner?.stdin.end();
    this.#spawner = undefined;
  }
}

/** A job as the gardener holds it (the seam its tests put a fake behind). */
export interface ContainerJob {
  readonly id: number;
  readonly discardOutput: boolean;
  readonly exitStatus: number | undefined;
  readonly exited: Promise<number>;
  /** Output already sent: a later link or stream returns only what comes after it. */
  readonly consumed: Record<OutputName, number>;
  readonly running: boolean;
  markConsumed(offsets: Record<OutputName, number>): Promise<void>;
  outputExceeded(): Promise<boolean>;
  read(name: OutputName, offset: number, cap: number): Promise<Buffer>;
  remove(): Promise<void>;
}

/** Starts jobs, and finds again those an earlier daemon left in the depot. */
export interface JobRunner {
  start(id: number, dir: string, spec: JobSpec, container: JobContainer): Promise<ContainerJob>;
  adopt(id: number, dir: string): Promise<ContainerJob>;
  close(): void;
}

/** The real jobs: a supervisor (job.sh) each, started through one spawner. */
export class SupervisorJobs implements JobRunner {
  readonly #launcher = new SupervisorLauncher();

  start(id: number, dir: string, spec: JobSpec, container: JobContainer): Promise<ContainerJob> {
    return Job.start(id, dir, spec, container, this.#launcher);
  }

  adopt(id: number, dir: string): Promise<ContainerJob> {
    return Job.adopt(id, dir);
  }

  close(): void {
    this.#launcher.close();
  }
}

/**
 * One job: a detached supervisor (job.sh) runs the script in the container and leaves output
 * and exit status in the job's depot directory, so a job can be found again from that alone.
 */
export class Job implements ContainerJob {
  readonly id: number;
  readonly dir: string;
  readonly discardOutput: boolean;
  exitStatus: number | undefined;
  readonly exited: Promise<number>;
  /**
   * Output already sent to a client by a stream that a daemon restart cut short: a later link
   * or stream returns only what comes after it.
   */
  consumed: Record<OutputName, number> = { stdout: 0, stderr: 0 };
  #consumedWrite: Promise<void> = Promise.resolve();
  #consumedQueued = false;

  private constructor(id: number, dir: string, discardOutput: boolean, exited: Promise<number>) {
    this.id = id;
    this.dir = dir;
    this.discardOutput = discardOutput;
    this.exited = exited.then((status) => (this.exitStatus = status));
  }

  static async start(id: number, dir: string, spec: JobSpec, container: JobContainer, launcher: SupervisorLauncher): Promise<Job> {
    await mkdir(dir, { recursive: true });
    const params = {
      DW_CGROUP_PROCS: container.cgroupProcs.join('\n'),
      DW_INIT_PID: String(container.initPid),
      DW_PRIVILEGED: spec.privileged ? '1' : '0',
      DW_UID: String(container.uid),
      DW_USER: container.user.name,
      DW_HOME: container.user.home,
      DW_DISCARD: spec.discardOutput ? '1' : '0',
      DW_OUTPUT_CAP: String(container.outputCap),
      DW_RLIMITS: prlimitOptions(spec.rlimits).join(' '),
      DW_SECCOMP: container.seccompHelper,
    };
    await Promise.all([
      writeFile(join(dir, 'spec.json'), JSON.stringify({ discardOutput: spec.discardOutput, privileged: spec.privileged, startedAt: Date.now() })),
      writeFile(
        join(dir, 'params'),
        Object.entries(params)
          .map(([k, v]) => `${k}=${shellQuote(v)}\n`)
          .join(''),
      ),
      writeFile(join(dir, 'script'), spec.script),
    ]);
    try {
      launcher.launch(dir);
    } catch (e) {
      throw new HostError('starting the job supervisor', (e as Error).message);
    }
    return new Job(id, dir, spec.discardOutput, watchExit(dir, Date.now()));
  }

  /** A job left by an earlier daemon: its supervisor (if alive) still writes `exit_status`. */
  static async adopt(id: number, dir: string): Promise<Job> {
    const spec = JSON.parse(await readFile(join(dir, 'spec.json'), 'utf8').catch(() => '{}')) as { discardOutput?: boolean; startedAt?: number };
    const job = new Job(id, dir, spec.discardOutput ?? false, watchExit(dir, spec.startedAt ?? 0));
    const consumed = JSON.parse(await readFile(join(dir, 'consumed'), 'utf8').catch(() => '{}')) as Partial<Record<OutputName, number>>;
    job.consumed = { stdout: consumed.stdout ?? 0, stderr: consumed.stderr ?? 0 };
    return job;
  }

  /**
   * Records how far a stream got (kept for a restarted daemon). At most one write runs and one
   * waits: the waiting one writes the latest offsets, so a chatty stream costs no write a chunk.
   */
  markConsumed(offsets: Record<OutputName, number>): Promise<void> {
    this.consumed = { ...offsets };
    if (this.#consumedQueued) return this.#consumedWrite;
    this.#consumedQueued = true;
    const file = join(this.dir, 'consumed');
    this.#consumedWrite = this.#consumedWrite
      .then(async () => {
        this.#consumedQueued = false;
        await writeFile(`${file}.tmp`, JSON.stringify(this.consumed));
        await rename(`${file}.tmp`, file);
      })
      .catch(() => undefined);
    return this.#consumedWrite;
  }

  get running(): boolean {
    return this.exitStatus === undefined;
  }

  /** Whether job.sh found the job writing past the output cap (and killed it). */
  async outputExceeded(): Promise<boolean> {
    return stat(join(this.dir, 'output_exceeded')).then(
      () => true,
      () => false,
    );
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
    await this.#consumedWrite;
    await rm(this.dir, { recursive: true, force: true });
  }
}

async function readExitStatus(dir: string): Promise<number | undefined> {
  const text = await readFile(join(dir, 'exit_status'), 'utf8').catch(() => undefined);
  return text === undefined || text.trim() === '' ? undefined : Number(text.trim());
}

/** Whether the job's supervisor is gone without a word (killed, or never started). */
async function supervisorGone(dir: string, startedAt: number): Promise<boolean> {
  const text = await readFile(join(dir, 'supervisor'), 'utf8').catch(() => undefined);
  if (!text) return Date.now() - startedAt > START_TIMEOUT_MS;
  const [pid, startTime] = text.trim().split(' ');
  return !isSameProcess(Number(pid), startTime);
}

/**
 * The job's exit status, from `exit_status` in its directory: inotify says when it is written,
 * a slow recheck catches a supervisor that died without writing it (status 255).
 */
function watchExit(dir: string, startedAt: number): Promise<number> {
  return new Promise((resolve) => {
    let done = false;
    let checking = false;
    let again = false;
    const finish = (status: number): void => {
      if (done) return;
      done = true;
      watcher?.close();
      clearInterval(timer);
      resolve(status);
    };
    const check = async (): Promise<void> => {
      if (checking) {
        again = true;
        return;
      }
      checking = true;
      try {
        do {
          again = false;
          const status = await readExitStatus(dir);
          if (status !== undefined) return finish(status);
          if (await supervisorGone(dir, startedAt)) return finish((await readExitStatus(dir)) ?? 255);
        } while (again && !done);
      } finally {
        checking = false;
      }
    };
    let watcher: ReturnType<typeof watch> | undefined;
    try {
      watcher = watch(dir, (_event, name) => {
        if (name === 'exit_status') void check();
      });
      watcher.on('error', () => undefined);
    } catch {
      // no inotify here: the recheck alone (slower) still gets there
    }
    const timer = setInterval(() => void check(), RECHECK_MS);
    void check();
  });
}
