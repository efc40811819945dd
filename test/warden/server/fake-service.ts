/**
 * An in-memory WardenService, FOR TESTING THE WIRE LAYER ONLY (framing, dispatch, ordering,
 * error handling). It isolates nothing; the real service is the Linux backend.
 *
 * Scripts are a tiny language of `;`-separated steps so tests can shape timing and output:
 * `sleep MS`, `out HEX` (stdout bytes), `err HEX` (stderr bytes), `fill N` (N bytes 0xab to
 * stdout), `exit N`.
 */
import { setTimeout as delay } from 'node:timers/promises';
import {
  WardenError,
  type ContainerInfo,
  type CreateSpec,
  type JobResult,
  type SpawnSpec,
  type StreamChunk,
  type WardenService,
} from '../../../container-host/warden/server/service.ts';

type Step = { kind: 'sleep'; n: number } | { kind: 'exit'; n: number } | { kind: 'out'; data: Buffer } | { kind: 'err'; data: Buffer };

function parseScript(script: string): Step[] {
  return script
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const [word, arg = ''] = s.split(/\s+/, 2);
      if (word === 'sleep' || word === 'exit') return { kind: word, n: Number(arg) } as Step;
      if (word === 'out' || word === 'err') return { kind: word, data: Buffer.from(arg, 'hex') } as Step;
      if (word === 'fill') return { kind: 'out', data: Buffer.alloc(Number(arg), 0xab) } as Step;
      throw new WardenError('bad_request', `fake service: unknown step ${word}`);
    });
}

interface Container {
  handle: string;
  state: 'active' | 'stopped';
  jobs: Map<number, Step[]>;
  memoryLimit: number;
}

const notSupported = () => Promise.reject(new WardenError('host_failure', 'not supported yet'));

export class FakeWardenService implements WardenService {
  readonly containers = new Map<string, Container>();
  readonly refs: string[] = [];
  readonly streamSignals: AbortSignal[] = [];
  private nextHandle = 1;
  private nextJob = 1;

  private get(handle: string): Container {
    const c = this.containers.get(handle);
    if (!c) throw new WardenError('unknown_handle', 'unknown handle');
    return c;
  }

  private describe(c: Container): ContainerInfo {
    return { state: c.state, events: [], containerPath: `/depot/${c.handle}`, jobIds: [...c.jobs.keys()] };
  }

  async create(spec: CreateSpec) {
    const handle = spec.handle ?? `h${this.nextHandle++}`;
    if (this.containers.has(handle)) throw new WardenError('handle_exists', `container with handle: ${handle} already exists.`);
    this.containers.set(handle, { handle, state: 'active', jobs: new Map(), memoryLimit: 0 });
    return { handle };
  }
  async stop(handle: string) {
    this.get(handle).state = 'stopped';
  }
  async destroy(handle: string) {
    this.get(handle);
    this.containers.delete(handle);
  }
  async info(handle: string) {
    return this.describe(this.get(handle));
  }
  async list() {
    return [...this.containers.keys()];
  }
  async spawn(spec: SpawnSpec) {
    const c = this.get(spec.handle);
    const id = this.nextJob++;
    c.jobs.set(id, parseScript(spec.script));
    return { jobId: id };
  }
  private take(handle: string, jobId: number): { c: Container; steps: Step[] } {
    const c = this.get(handle);
    const steps = c.jobs.get(jobId);
    if (!steps) throw new WardenError('no_such_job', 'no such job');
    c.jobs.delete(jobId);
    return { c, steps };
  }
  async link(handle: string, jobId: number): Promise<JobResult> {
    const { c, steps } = this.take(handle, jobId);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let exitStatus = 0;
    for (const s of steps) {
      if (s.kind === 'sleep') await delay(s.n);
      else if (s.kind === 'exit') exitStatus = s.n;
      else (s.kind === 'out' ? out : err).push(s.data);
    }
    return { exitStatus, stdout: Buffer.concat(out), stderr: Buffer.concat(err), info: this.describe(c) };
  }
  async *stream(handle: string, jobId: number, signal?: AbortSignal): AsyncIterable<StreamChunk> {
    const { c, steps } = this.take(handle, jobId);
    if (signal) this.streamSignals.push(signal);
    let exitStatus = 0;
    for (const s of steps) {
      if (signal?.aborted) return;
      if (s.kind === 'sleep') await delay(s.n, undefined, { signal }).catch(() => {});
      else if (s.kind === 'exit') exitStatus = s.n;
      else yield { name: s.kind === 'out' ? 'stdout' : 'stderr', data: s.data };
    }
    yield { exitStatus, info: this.describe(c) };
  }
  async run(spec: SpawnSpec) {
    const { jobId } = await this.spawn(spec);
    return this.link(spec.handle, jobId);
  }
  async limitMemory(handle: string, limit?: number) {
    const c = this.get(handle);
    if (limit !== undefined) c.memoryLimit = limit;
    return { limitInBytes: c.memoryLimit };
  }
  async limitCpu(handle: string, shares?: number) {
    this.get(handle);
    return { limitInShares: shares ?? 1024 };
  }
  async copyIn(handle: string) {
    this.get(handle);
  }
  async copyOut(handle: string) {
    this.get(handle);
  }
  netIn = notSupported;
  netOut = notSupported;
  limitDisk = notSupported;
  limitBandwidth = notSupported;
  retain(handle: string) {
    this.refs.push(`+${handle}`);
  }
  release(handle: string) {
    this.refs.push(`-${handle}`);
  }
}
