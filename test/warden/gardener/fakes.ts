/**
 * In-memory stand-ins for every part the gardener composes (depot, containerizer, cgroups,
 * networker, volumizer, copier, jobs), so its lifecycle rules (DESIGN §5, §10) are tested
 * without root and without touching the host. One `FakeHost` is the machine: a gardener
 * closed and another started over the same host is a daemon restart.
 */
import { WardenError, type DiskLimits, type MemoryStat } from '../../../container-host/warden/server/service.ts';
import type { CgroupDriver, ContainerCgroup, CpuStat } from '../../../container-host/warden/linux/cgroups/types.ts';
import { resolveConfig, type LinuxWardenConfig } from '../../../container-host/warden/linux/config.ts';
import type { Containerizer, InitProcess, StartSpec } from '../../../container-host/warden/linux/containerizer/containerizer.ts';
import type { ContainerJob, JobContainer, JobRunner, JobSpec, OutputName } from '../../../container-host/warden/linux/containerizer/jobs.ts';
import type { ContainerRecord } from '../../../container-host/warden/linux/depot.ts';
import { Gardener, type GardenerCopier, type GardenerDepot, type GardenerParts } from '../../../container-host/warden/linux/gardener.ts';
import type { BandwidthStat, NetState, Networker } from '../../../container-host/warden/linux/networker/networker.ts';
import type { RootfsPlan, Volumizer } from '../../../container-host/warden/linux/volumizer/volumizer.ts';

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

export class FakeJob implements ContainerJob {
  readonly id: number;
  readonly dir: string;
  readonly discardOutput: boolean;
  exitStatus: number | undefined;
  readonly exited: Promise<number>;
  consumed: Record<OutputName, number> = { stdout: 0, stderr: 0 };
  output: Record<OutputName, Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  /** What job.sh leaves when the job wrote past the cap. */
  exceeded = false;
  #resolve!: (status: number) => void;
  readonly #host: FakeHost;

  constructor(host: FakeHost, id: number, dir: string, spec: JobSpec) {
    this.#host = host;
    this.id = id;
    this.dir = dir;
    this.discardOutput = spec.discardOutput;
    this.exited = new Promise<number>((resolve) => (this.#resolve = resolve)).then((s) => (this.exitStatus = s));
  }

  write(name: OutputName, text: string): void {
    this.output[name] = Buffer.concat([this.output[name], Buffer.from(text)]);
  }

  /** The job ends (what the supervisor's exit_status file says). */
  finish(status: number): Promise<number> {
    this.#resolve(status);
    return this.exited;
  }

  get running(): boolean {
    return this.exitStatus === undefined;
  }

  async markConsumed(offsets: Record<OutputName, number>): Promise<void> {
    this.consumed = { ...offsets };
  }

  async outputExceeded(): Promise<boolean> {
    return this.exceeded;
  }

  async read(name: OutputName, offset: number, cap: number): Promise<Buffer> {
    if (this.discardOutput || offset >= cap) return Buffer.alloc(0);
    return Buffer.from(this.output[name].subarray(offset, Math.min(this.output[name].length, cap)));
  }

  async remove(): Promise<void> {
    this.#host.jobs.delete(this.dir);
  }
}

export class FakeCgroup implements ContainerCgroup {
  readonly procsFiles: string[] = [];
  memory = 0;
  shares = 1024;
  pidsMax = 0;
  /** What the kernel's OOM killer has done in here. */
  ooms = 0;
  setMemoryLimit(bytes: number): void {
    this.memory = bytes;
  }
  memoryLimit(): number {
    return this.memory;
  }
  setCpuShares(shares: number): void {
    this.shares = shares;
  }
  cpuShares(): number {
    return this.shares;
  }
  setPidsLimit(max: number): void {
    this.pidsMax = max;
  }
  blockForks(): () => void {
    return () => undefined;
  }
  oomKills(): number {
    return this.ooms;
  }
  memoryStat(): MemoryStat {
    return {} as MemoryStat;
  }
  cpuStat(): CpuStat {
    return { usage: 0, user: 0, system: 0 };
  }
  pids(): number[] {
    return [];
  }
  exitedTasks(): number {
    return 0;
  }
  remove(): void {}
}

/** The machine the parts share: depot records, job directories, running inits, cgroups. */
export class FakeHost {
  readonly records = new Map<string, ContainerRecord | undefined>();
  /** Job directories (depot `jobs/<id>/`) by path: what a restarted daemon adopts. */
  readonly jobs = new Map<string, FakeJob>();
  readonly inits = new Set<number>();
  readonly cgroups = new Map<string, FakeCgroup>();
  readonly stops: Array<{ initPid: number; kill: boolean }> = [];
  nextPid = 1000;
}

export class FakeDepot implements GardenerDepot {
  readonly #host: FakeHost;
  constructor(host: FakeHost) {
    this.#host = host;
  }
  async init(): Promise<void> {}
  dir(handle: string): string {
    return `/fake-depot/${handle}`;
  }
  jobDir(handle: string, jobId: number): string {
    return `${this.dir(handle)}/jobs/${jobId}`;
  }
  async reserve(handle: string): Promise<string> {
    if (this.#host.records.has(handle)) throw new WardenError('handle_exists', `container with handle: ${handle} already exists.`);
    this.#host.records.set(handle, undefined);
    return this.dir(handle);
  }
  async save(record: ContainerRecord): Promise<void> {
    this.#host.records.set(record.handle, clone(record));
  }
  async flush(): Promise<void> {}
  async jobIds(handle: string): Promise<number[]> {
    const prefix = `${this.dir(handle)}/jobs/`;
    return [...this.#host.jobs.keys()].filter((d) => d.startsWith(prefix)).map((d) => Number(d.slice(prefix.length)));
  }
  async load(handle: string): Promise<ContainerRecord | undefined> {
    const r = this.#host.records.get(handle);
    return r && clone(r);
  }
  async handles(): Promise<string[]> {
    return [...this.#host.records.keys()];
  }
  async remove(handle: string): Promise<void> {
    this.#host.records.delete(handle);
    for (const dir of [...this.#host.jobs.keys()]) if (dir.startsWith(`${this.dir(handle)}/`)) this.#host.jobs.delete(dir);
  }
}

export class FakeContainerizer implements Containerizer {
  readonly #host: FakeHost;
  constructor(host: FakeHost) {
    this.#host = host;
  }
  async start(_spec: StartSpec): Promise<InitProcess> {
    const initPid = this.#host.nextPid++;
    this.#host.inits.add(initPid);
    return { initPid, initStartTime: `t${initPid}`, keeperPid: initPid + 1 };
  }
  isRunning(init: InitProcess): boolean {
    return this.#host.inits.has(init.initPid);
  }
  async stopProcesses(init: InitProcess, _cgroup: ContainerCgroup, opts: { kill: boolean; timeoutMs: number }): Promise<void> {
    this.#host.stops.push({ initPid: init.initPid, kill: opts.kill });
  }
  async destroy(init: InitProcess | undefined, cgroup: ContainerCgroup): Promise<void> {
    if (init) this.#host.inits.delete(init.initPid);
    for (const [handle, cg] of this.#host.cgroups) if (cg === cgroup) this.#host.cgroups.delete(handle);
  }
}

export class FakeCgroups implements CgroupDriver {
  readonly version = 2 as const;
  readonly #host: FakeHost;
  constructor(host: FakeHost) {
    this.#host = host;
  }
  create(handle: string): FakeCgroup {
    return this.open(handle);
  }
  open(handle: string): FakeCgroup {
    let cg = this.#host.cgroups.get(handle);
    if (!cg) this.#host.cgroups.set(handle, (cg = new FakeCgroup()));
    return cg;
  }
  list(): string[] {
    return [...this.#host.cgroups.keys()];
  }
}

/** Loopback only, as `network: false`: no address, nothing to wire. */
export class FakeNetworker implements Networker {
  readonly claimed: Array<NetState | undefined> = [];
  acquire(): NetState | undefined {
    return undefined;
  }
  async attach(): Promise<void> {}
  async release(): Promise<void> {}
  claim(net: NetState | undefined): void {
    this.claimed.push(net);
  }
  addresses(): { hostIp?: string; containerIp?: string } {
    return {};
  }
  bandwidthStat(): BandwidthStat | undefined {
    return undefined;
  }
  async netIn(): Promise<{ hostPort: number; containerPort: number }> {
    return { hostPort: 61001, containerPort: 61001 };
  }
  async netOut(): Promise<void> {}
  async limitBandwidth(): Promise<{ rate: number; burst: number }> {
    return { rate: 0, burst: 0 };
  }
}

export class FakeVolumizer implements Volumizer {
  async plan(): Promise<RootfsPlan> {
    return { base: '/fake-base', hostBinds: [], dev: '/fake-dev' };
  }
  async prepareDisk(_dir: string, plan: RootfsPlan): Promise<{ plan: RootfsPlan }> {
    return { plan };
  }
  async limitDisk(_dir: string, _disk: unknown, limits: DiskLimits): Promise<DiskLimits> {
    return limits;
  }
  async diskStat(): Promise<undefined> {
    return undefined;
  }
  async releaseDisk(): Promise<void> {}
}

export class FakeCopier implements GardenerCopier {
  async prepare(): Promise<void> {}
  async copyIn(): Promise<void> {}
  async copyOut(): Promise<void> {}
}

export class FakeJobs implements JobRunner {
  readonly #host: FakeHost;
  constructor(host: FakeHost) {
    this.#host = host;
  }
  async start(id: number, dir: string, spec: JobSpec, _container: JobContainer): Promise<FakeJob> {
    const job = new FakeJob(this.#host, id, dir, spec);
    this.#host.jobs.set(dir, job);
    return job;
  }
  /** As the real adopt finds the supervisor's files again: here, the same job object. */
  async adopt(_id: number, dir: string): Promise<FakeJob> {
    const job = this.#host.jobs.get(dir);
    if (!job) throw new Error(`no job directory ${dir}`);
    return job;
  }
  close(): void {}
}

/** A gardener over fakes; `host` shared between two is a daemon restart. */
export function fakeGardener(host = new FakeHost(), config: Partial<LinuxWardenConfig> = {}): { gardener: Gardener; host: FakeHost; parts: GardenerParts } {
  const parts: GardenerParts = {
    // The OOM poll runs hourly here: tests drive checks through job exits and links, and fake clocks stay cheap.
    config: resolveConfig({ network: false, disk: false, pollIntervalMs: 3_600_000, ...config }),
    depot: new FakeDepot(host),
    cgroups: new FakeCgroups(host),
    containerizer: new FakeContainerizer(host),
    networker: new FakeNetworker(),
    volumizer: new FakeVolumizer(),
    copier: new FakeCopier(),
    jobs: new FakeJobs(host),
  };
  return { gardener: new Gardener(parts), host, parts };
}

/** The fake job behind a spawned job id. */
export function jobOf(host: FakeHost, handle: string, jobId: number): FakeJob {
  const job = host.jobs.get(`/fake-depot/${handle}/jobs/${jobId}`);
  if (!job) throw new Error(`no job ${jobId} in ${handle}`);
  return job;
}
