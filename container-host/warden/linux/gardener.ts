import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import {
  WardenError,
  type ContainerInfo,
  type CreateSpec,
  type DiskLimits,
  type JobResult,
  type NetInSpec,
  type NetOutSpec,
  type SpawnSpec,
  type StreamChunk,
  type WardenService,
} from '../server/service.ts';
import type { CgroupDriver, ContainerCgroup } from './cgroups/types.ts';
import type { LinuxWardenConfig } from './config.ts';
import type { Containerizer, InitProcess } from './containerizer/containerizer.ts';
import { OUT_OF_MEMORY, OUTPUT_EXCEEDED } from '../../../contracts/warden-events.ts';
import type { ContainerJob, JobRunner, OutputName } from './containerizer/jobs.ts';
import { Depot, type ContainerRecord } from './depot.ts';
import { mapHostErrors } from './errors.ts';
import type { RsyncCopier } from './files/copy.ts';
import { GraceTimers } from './grace.ts';
import { JobTable } from './job-table.ts';
import type { Networker } from './networker/networker.ts';
import { UidPool } from './pools/uid-pool.ts';
import type { Volumizer } from './volumizer/volumizer.ts';

export { MAX_TIMER_MS } from './grace.ts';

/** A container as the daemon holds it between requests; the depot record is its durable half. */
interface Live {
  record: ContainerRecord;
  cgroup: ContainerCgroup;
  /** Jobs not yet consumed by link or stream (info's job_ids). */
  jobs: JobTable<ContainerJob>;
  refs: number;
  /** Set once destroy begins: the handle is then unknown to every other request. */
  destroying?: Promise<void>;
}

/** What the gardener uses of the depot and the copier (their tests' fakes stand in for these). */
export type GardenerDepot = Pick<Depot, 'init' | 'handles' | 'load' | 'save' | 'remove' | 'reserve' | 'dir' | 'jobDir' | 'jobIds' | 'flush'>;
export type GardenerCopier = Pick<RsyncCopier, 'prepare' | 'copyIn' | 'copyOut'>;

export interface GardenerParts {
  config: LinuxWardenConfig;
  depot: GardenerDepot;
  cgroups: CgroupDriver;
  containerizer: Containerizer;
  networker: Networker;
  volumizer: Volumizer;
  copier: GardenerCopier;
  jobs: JobRunner;
}

function initOf(record: ContainerRecord): InitProcess | undefined {
  if (!record.initPid || !record.initStartTime) return undefined;
  return { initPid: record.initPid, initStartTime: record.initStartTime, keeperPid: record.keeperPid ?? 0 };
}

function stateError(allowed: string[], current: string): WardenError {
  return new WardenError('bad_state', `Container state must be one of '${allowed.join("', '")}', current state is '${current}'`);
}

/** Handles like the original's: short, lowercase base-32, unique enough to never collide. */
function newHandle(): string {
  return (BigInt(Date.now()) * 1024n + BigInt(randomBytes(2).readUInt16BE() % 1024)).toString(32) + randomBytes(2).toString('hex');
}

/**
 * The Linux WardenService: composes the depot (which containers exist), the containerizer
 * (init, processes, jobs), cgroups (limits and stats), the volumizer (rootfs) and the
 * networker; owns the lifecycle rules (states, grace time, OOM, output cap).
 */
export class Gardener implements WardenService {
  readonly #p: GardenerParts;
  readonly #live = new Map<string, Live>();
  readonly #uids: UidPool;
  readonly #grace = new GraceTimers();
  #poller?: NodeJS.Timeout;
  #polling = false;

  constructor(parts: GardenerParts) {
    this.#p = parts;
    this.#uids = new UidPool(parts.config.uidPool.first, parts.config.uidPool.size);
  }

  /**
   * Reads the depot (the snapshot: one atomically written record per container, plus its job
   * directories): containers whose init still runs are restored with their jobs, uids and
   * grace time; the rest are cleaned up.
   */
  async start(): Promise<void> {
    await this.#p.depot.init();
    const restartedAt = Date.now();
    let newest: ContainerRecord | undefined;
    for (const handle of await this.#p.depot.handles()) {
      const record = await this.#p.depot.load(handle);
      const init = record && initOf(record);
      const cgroup = this.#p.cgroups.open(handle);
      if (!record || !init || !this.#p.containerizer.isRunning(init)) {
        await this.#p.containerizer.destroy(init, cgroup).catch(() => undefined);
        await this.#releaseHostParts(handle, record).catch(() => undefined);
        await this.#p.depot.remove(handle);
        continue;
      }
      this.#uids.claim(record.uid);
      this.#p.networker.claim(record.net);
      // A depot written by an older wardend has a copy configuration without the user.
      await this.#p.copier.prepare(this.#p.depot.dir(handle), init.initPid, { uid: record.uid, gid: record.uid });
      if (!newest || record.createdAt > newest.createdAt) newest = record;
      const live: Live = { record, cgroup, jobs: new JobTable(), refs: 0 };
      // Every job directory left is a job not yet consumed (link and stream remove it).
      for (const id of await this.#p.depot.jobIds(handle)) {
        const job = await this.#p.jobs.adopt(id, this.#p.depot.jobDir(handle, id));
        record.nextJobId = Math.max(record.nextJobId, id + 1);
        live.jobs.add(id, job);
      }
      // Connections that referenced it died with the old daemon: its grace time starts now.
      record.idleSince ??= restartedAt;
      await this.#p.depot.save(record);
      this.#live.set(handle, live);
      this.#armGrace(live);
    }
    // New uids continue after the newest container's, as they would have without the restart.
    if (newest) this.#uids.resumeAfter(newest.uid);
    // cgroups without a depot directory belong to no container any more.
    for (const handle of this.#p.cgroups.list()) {
      if (!this.#live.has(handle)) await this.#p.containerizer.destroy(undefined, this.#p.cgroups.open(handle)).catch(() => undefined);
    }
    this.#poller = setInterval(() => void this.#poll(), this.#p.config.pollIntervalMs);
    this.#poller.unref();
  }

  /** Stops timers and waits for the snapshot to be on disk; containers and jobs keep running. */
  async close(): Promise<void> {
    clearInterval(this.#poller);
    this.#grace.close();
    this.#p.jobs.close();
    await this.#p.depot.flush();
  }

  /** Destroys every container (tests, `up` on Ctrl-C). */
  async destroyAll(): Promise<void> {
    await Promise.all([...this.#live.keys()].map((h) => this.destroy(h).catch(() => undefined)));
  }

  #get(handle: string): Live {
    const live = this.#live.get(handle);
    if (!live || live.destroying) throw new WardenError('unknown_handle', 'unknown handle');
    return live;
  }

  async #save(live: Live): Promise<void> {
    if (!live.destroying) await this.#p.depot.save(live.record);
  }

  // ---- lifecycle ----

  async create(spec: CreateSpec): Promise<{ handle: string }> {
    const handle = spec.handle || newHandle();
    Depot.validateHandle(handle);
    for (const b of spec.bindMounts) {
      if (!isAbsolute(b.srcPath) || !isAbsolute(b.dstPath)) throw new WardenError('bad_request', `bind mount paths must be absolute: ${b.srcPath} -> ${b.dstPath}`);
      if (
        !(await stat(b.srcPath).then(
          () => true,
          () => false,
        ))
      )
        throw new WardenError('bad_request', `bind mount source does not exist: ${b.srcPath}`);
    }
    const dir = await this.#p.depot.reserve(handle);
    let net;
    let uid: number;
    try {
      uid = this.#uids.acquire();
    } catch (e) {
      await this.#p.depot.remove(handle);
      throw e;
    }
    try {
      net = this.#p.networker.acquire(spec.network);
    } catch (e) {
      this.#uids.release(uid);
      await this.#p.depot.remove(handle);
      throw e;
    }
    const record: ContainerRecord = {
      handle,
      uid,
      graceTimeS: spec.graceTimeS ?? this.#p.config.defaultGraceTimeS,
      bindMounts: spec.bindMounts,
      network: spec.network,
      rootfs: spec.rootfs,
      state: 'born',
      events: [],
      nextJobId: 1,
      createdAt: Date.now(),
      idleSince: Date.now(),
      net,
    };
    let cgroup: ContainerCgroup | undefined;
    await mapHostErrors('create', async () => {
      try {
        await this.#p.depot.save(record);
        const { plan, disk } = await this.#p.volumizer.prepareDisk(dir, await this.#p.volumizer.plan(spec.rootfs));
        record.disk = disk;
        cgroup = this.#p.cgroups.create(handle);
        cgroup.setPidsLimit(this.#p.config.pidsLimit);
        const init = await this.#p.containerizer.start({ handle, dir, plan, uid, bindMounts: spec.bindMounts, cgroup });
        Object.assign(record, init, { state: 'active' });
        await this.#p.networker.attach(net, init.initPid);
        await this.#p.copier.prepare(dir, init.initPid, { uid, gid: uid });
        await this.#p.depot.save(record);
      } catch (e) {
        const init = initOf(record);
        if (cgroup) await this.#p.containerizer.destroy(init, cgroup).catch(() => undefined);
        await this.#releaseHostParts(handle, record).catch(() => undefined);
        await this.#p.depot.remove(handle);
        this.#uids.release(uid);
        throw e;
      }
    });
    const live: Live = { record, cgroup: cgroup!, jobs: new JobTable(), refs: 0 };
    this.#live.set(handle, live);
    this.#armGrace(live);
    return { handle };
  }

  async stop(handle: string, opts: { background: boolean; kill: boolean }): Promise<void> {
    const live = this.#get(handle);
    const init = initOf(live.record);
    live.record.state = 'stopped';
    await this.#save(live);
    const stopping = init ? this.#p.containerizer.stopProcesses(init, live.cgroup, { kill: opts.kill, timeoutMs: this.#p.config.stopTimeoutMs }) : Promise.resolve();
    if (opts.background) {
      stopping.catch(() => undefined);
      return;
    }
    await mapHostErrors('stop', () => stopping);
  }

  async destroy(handle: string): Promise<void> {
    const live = this.#get(handle);
    live.destroying = (async () => {
      this.#grace.clear(handle);
      await this.#p.containerizer.destroy(initOf(live.record), live.cgroup);
      await this.#releaseHostParts(handle, live.record);
      await this.#p.depot.remove(handle);
      this.#uids.release(live.record.uid);
      this.#live.delete(handle);
    })();
    const destroying = live.destroying;
    await mapHostErrors('destroy', () =>
      destroying.catch((e: unknown) => {
        live.destroying = undefined;
        throw e;
      }),
    );
  }

  async info(handle: string): Promise<ContainerInfo> {
    const live = this.#get(handle);
    const info = this.#info(live);
    info.diskStat = await this.#p.volumizer.diskStat(this.#p.depot.dir(handle), live.record.disk).catch(() => undefined);
    return info;
  }

  /** The networker's and volumizer's host state (veth, chains, ports, disk image) of a dead container. */
  async #releaseHostParts(handle: string, record: ContainerRecord | undefined): Promise<void> {
    await this.#p.networker.release(record?.net);
    await this.#p.volumizer.releaseDisk(this.#p.depot.dir(handle));
  }

  #info(live: Live): ContainerInfo {
    const { record, cgroup } = live;
    const info: ContainerInfo = {
      state: record.state,
      events: [...record.events],
      containerPath: this.#p.depot.dir(record.handle),
      ...this.#p.networker.addresses(record.net),
      bandwidthStat: this.#p.networker.bandwidthStat(record.net),
      jobIds: live.jobs.ids(),
    };
    try {
      info.memoryStat = cgroup.memoryStat();
      info.cpuStat = cgroup.cpuStat();
    } catch {
      // The cgroup is going away (destroy racing info): stats are simply absent.
    }
    return info;
  }

  async list(): Promise<string[]> {
    return [...this.#live.values()].filter((l) => !l.destroying).map((l) => l.record.handle);
  }

  // ---- jobs ----

  async spawn(spec: SpawnSpec): Promise<{ jobId: number }> {
    const live = this.#get(spec.handle);
    if (live.record.state !== 'active') throw stateError(['active'], live.record.state);
    const jobId = live.record.nextJobId++;
    await this.#save(live);
    await mapHostErrors('spawn', async () => {
      const job = await this.#p.jobs.start(jobId, this.#p.depot.jobDir(spec.handle, jobId), spec, {
        initPid: live.record.initPid!,
        cgroupProcs: live.cgroup.procsFiles,
        uid: live.record.uid,
        user: this.#p.config.user,
        seccompHelper: this.#p.config.seccompHelper,
        outputCap: this.#p.config.maxOutputBytes,
      });
      live.jobs.add(jobId, job);
      void job.exited.then(() => this.#checkContainer(live)).catch(() => undefined);
    });
    return { jobId };
  }

  /** Takes the job out of the container's table: link and stream consume it. */
  #consume(handle: string, jobId: number): { live: Live; job: ContainerJob } {
    const live = this.#get(handle);
    return { live, job: live.jobs.take(jobId) };
  }

  async link(handle: string, jobId: number, signal?: AbortSignal): Promise<JobResult> {
    const { live, job } = this.#consume(handle, jobId);
    const exitStatus = await new Promise<number>((resolve, reject) => {
      const onAbort = (): void => reject(new WardenError('host_failure', 'link cut short: the connection closed'));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      job.exited.then(resolve, reject).finally(() => signal?.removeEventListener('abort', onAbort));
    }).catch((e: unknown) => {
      // The client left before the job ended: the job goes on, and stays linkable.
      if (!live.destroying) live.jobs.add(jobId, job);
      throw e;
    });
    await this.#checkContainer(live);
    await this.#checkOutput(live, job);
    const cap = this.#p.config.maxOutputBytes;
    const [stdout, stderr] = await Promise.all([job.read('stdout', job.consumed.stdout, cap), job.read('stderr', job.consumed.stderr, cap)]);
    if (!live.destroying) await job.remove();
    return { exitStatus, stdout, stderr, info: this.#info(live) };
  }

  async run(spec: SpawnSpec, signal?: AbortSignal): Promise<JobResult> {
    const { jobId } = await this.spawn(spec);
    return this.link(spec.handle, jobId, signal);
  }

  /**
   * Consumes the job once its exit status is handed out. Cut short before that (the client
   * left, or a read failed), the job goes back to the container's table: a later link or
   * stream gets the exit status and the output not yet sent (`job.consumed`).
   */
  async *stream(handle: string, jobId: number, signal?: AbortSignal): AsyncIterable<StreamChunk> {
    const { live, job } = this.#consume(handle, jobId);
    const cap = this.#p.config.maxOutputBytes;
    const offsets: Record<OutputName, number> = { ...job.consumed };
    // One waker for the job's exit and the abort (not one listener per poll of a long job).
    let wake: (() => void) | undefined;
    const onWake = (): void => wake?.();
    signal?.addEventListener('abort', onWake);
    void job.exited.then(onWake, onWake);
    let exitSent = false;
    try {
      for (let idle = 0; ; ) {
        if (signal?.aborted) return;
        const finished = !job.running; // checked before reading, so nothing written before exit is missed
        let got = false;
        for (const name of ['stdout', 'stderr'] as const) {
          const data = await job.read(name, offsets[name], cap);
          if (data.length) {
            offsets[name] += data.length;
            got = true;
            yield { name, data };
            // Sent: a restarted daemon will not send it again.
            void job.markConsumed(offsets);
          }
        }
        if (finished) {
          await this.#checkContainer(live);
          await this.#checkOutput(live, job);
          exitSent = true;
          yield { exitStatus: job.exitStatus!, info: this.#info(live) };
          return;
        }
        idle = got ? 0 : idle + 1;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(5 + idle * 5, 100));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
          if (!job.running || signal?.aborted) wake();
        });
        wake = undefined;
      }
    } finally {
      wake = undefined;
      signal?.removeEventListener('abort', onWake);
      if (!live.destroying) {
        if (exitSent) await job.remove();
        else live.jobs.add(jobId, job);
      }
    }
  }

  // ---- files ----

  async copyIn(handle: string, srcPath: string, dstPath: string): Promise<void> {
    const live = this.#get(handle);
    if (live.record.state !== 'active') throw stateError(['active'], live.record.state);
    await this.#p.copier.copyIn(this.#p.depot.dir(handle), srcPath, dstPath);
  }

  async copyOut(handle: string, srcPath: string, dstPath: string, owner?: string): Promise<void> {
    const live = this.#get(handle);
    if (live.record.state !== 'active' && live.record.state !== 'stopped') throw stateError(['active', 'stopped'], live.record.state);
    await this.#p.copier.copyOut(this.#p.depot.dir(handle), srcPath, dstPath, owner || undefined);
  }

  // ---- limits ----

  async limitMemory(handle: string, limitInBytes?: number): Promise<{ limitInBytes: number }> {
    const live = this.#get(handle);
    return mapHostErrors('limit_memory', () => {
      if (limitInBytes !== undefined) live.cgroup.setMemoryLimit(limitInBytes);
      return { limitInBytes: live.cgroup.memoryLimit() };
    });
  }

  async limitCpu(handle: string, limitInShares?: number): Promise<{ limitInShares: number }> {
    const live = this.#get(handle);
    return mapHostErrors('limit_cpu', async () => {
      if (limitInShares !== undefined) {
        live.cgroup.setCpuShares(limitInShares);
        live.record.cpuShares = limitInShares;
        await this.#save(live);
      }
      // v2 keeps a weight, which maps back onto shares only approximately: report what was set.
      return { limitInShares: live.record.cpuShares ?? live.cgroup.cpuShares() };
    });
  }

  async limitDisk(handle: string, limits: DiskLimits): Promise<DiskLimits> {
    const live = this.#get(handle);
    return mapHostErrors('limit_disk', async () => {
      try {
        return await this.#p.volumizer.limitDisk(this.#p.depot.dir(handle), live.record.disk, limits);
      } finally {
        // Even one that failed half-way changed the ballast: the depot keeps what is there now.
        await this.#save(live);
      }
    });
  }

  async limitBandwidth(handle: string, rate?: number, burst?: number): Promise<{ rate: number; burst: number }> {
    const live = this.#get(handle);
    return mapHostErrors('limit_bandwidth', async () => {
      const result = await this.#p.networker.limitBandwidth(live.record.net, rate, burst);
      await this.#save(live);
      return result;
    });
  }

  async netIn(spec: NetInSpec): Promise<{ hostPort: number; containerPort: number }> {
    const live = this.#get(spec.handle);
    return mapHostErrors('net_in', async () => {
      const result = await this.#p.networker.netIn(live.record.net, spec);
      await this.#save(live);
      return result;
    });
  }

  async netOut(spec: NetOutSpec): Promise<void> {
    const live = this.#get(spec.handle);
    await mapHostErrors('net_out', () => this.#p.networker.netOut(live.record.net, spec));
  }

  // ---- grace time ----

  retain(handle: string): void {
    const live = this.#live.get(handle);
    if (!live) return;
    live.refs++;
    this.#grace.clear(handle);
    if (live.record.idleSince !== undefined) {
      delete live.record.idleSince;
      this.#save(live).catch(() => undefined);
    }
  }

  release(handle: string): void {
    const live = this.#live.get(handle);
    if (!live) return;
    live.refs = Math.max(0, live.refs - 1);
    if (live.refs > 0) return;
    live.record.idleSince = Date.now();
    this.#save(live).catch(() => undefined);
    this.#armGrace(live);
  }

  /** Destroys the container grace_time after `idleSince` (which a restart keeps): see grace.ts. */
  #armGrace(live: Live): void {
    const { record } = live;
    this.#grace.arm(
      record.handle,
      () => (live.refs > 0 || live.destroying ? undefined : (record.idleSince ?? Date.now()) + record.graceTimeS * 1000),
      () => {
        if (live.refs === 0) this.destroy(record.handle).catch(() => undefined);
      },
    );
  }

  // ---- watching: OOM kills (the output cap is held by job.sh) ----

  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      for (const live of this.#live.values()) {
        if (live.destroying) continue;
        await this.#checkContainer(live).catch(() => undefined);
      }
    } finally {
      this.#polling = false;
    }
  }

  /** An OOM kill stops the container (the original's behaviour) and is reported as an event. */
  async #checkContainer(live: Live): Promise<void> {
    if (live.destroying || live.record.state !== 'active' || live.record.events.includes(OUT_OF_MEMORY)) return;
    let kills = 0;
    try {
      kills = live.cgroup.oomKills();
    } catch {
      return;
    }
    if (kills === 0) return;
    live.record.events.push(OUT_OF_MEMORY);
    live.record.state = 'stopped';
    await this.#save(live);
    const init = initOf(live.record);
    if (init) await this.#p.containerizer.stopProcesses(init, live.cgroup, { kill: true, timeoutMs: 0 });
  }

  /** Once a job has ended: job.sh holds the cap where the output is written and says when it did. */
  async #checkOutput(live: Live, job: ContainerJob): Promise<void> {
    if (job.discardOutput || !(await job.outputExceeded())) return;
    if (!live.record.events.includes(OUTPUT_EXCEEDED)) {
      live.record.events.push(OUTPUT_EXCEEDED);
      await this.#save(live);
    }
  }

  /** For tests and the leak check: what this backend has on the host right now. */
  leftoverCgroups(): string[] {
    return this.#p.cgroups.list();
  }
}
