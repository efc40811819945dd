/**
 * The seam between the wire (protocol + connection handling) and the host (gardener:
 * containerizer, networker, volumizer). The server decodes a request, calls one method here,
 * and encodes what it returns; a thrown WardenError becomes an ErrorResponse with its message
 * and its code (`data`, DESIGN §5).
 *
 * Types mirror the protocol messages of DESIGN.md §5 in camelCase; byte fields
 * (handles, output) are Buffers, u64 fields are bigint-safe numbers (number up to 2^53).
 */

import type { WardenErrorCode } from '../../../contracts/warden-errors.ts';
import type { ResourceLimits } from '../protocol/types.ts';

/** The wire's rlimits, as the service takes them (one definition, the protocol's). */
export type { ResourceLimits };

export interface BindMount {
  srcPath: string;
  dstPath: string;
  mode: 'ro' | 'rw';
}

export interface CreateSpec {
  handle?: string;
  graceTimeS?: number;
  bindMounts: BindMount[];
  network?: string;
  rootfs?: string;
}

export interface SpawnSpec {
  handle: string;
  script: string;
  privileged: boolean;
  rlimits?: ResourceLimits;
  discardOutput: boolean;
  logTag?: string;
}

export interface MemoryStat {
  cache: number;
  rss: number;
  mappedFile: number;
  pgpgin: number;
  pgpgout: number;
  swap: number;
  pgfault: number;
  pgmajfault: number;
  inactiveAnon: number;
  activeAnon: number;
  inactiveFile: number;
  activeFile: number;
  unevictable: number;
  hierarchicalMemoryLimit: number;
  hierarchicalMemswLimit: number;
  totalCache: number;
  totalRss: number;
  totalMappedFile: number;
  totalPgpgin: number;
  totalPgpgout: number;
  totalSwap: number;
  totalPgfault: number;
  totalPgmajfault: number;
  totalInactiveAnon: number;
  totalActiveAnon: number;
  totalInactiveFile: number;
  totalActiveFile: number;
  totalUnevictable: number;
}

export interface ContainerInfo {
  state: 'born' | 'active' | 'stopped' | 'destroyed';
  events: string[];
  hostIp?: string;
  containerIp?: string;
  containerPath: string;
  memoryStat?: MemoryStat;
  cpuStat?: { usage: number; user: number; system: number };
  diskStat?: { bytesUsed: number; inodesUsed: number };
  bandwidthStat?: { inRate: number; inBurst: number; outRate: number; outBurst: number };
  jobIds: number[];
}

export interface JobResult {
  exitStatus: number;
  stdout: Buffer;
  stderr: Buffer;
  info: ContainerInfo;
}

export type StreamChunk = { name: 'stdout' | 'stderr'; data: Buffer } | { exitStatus: number; info: ContainerInfo };

export interface NetInSpec {
  handle: string;
  containerPort?: number;
  hostPort?: number;
}
export interface NetOutSpec {
  handle: string;
  network?: string;
  port?: number;
  portRange?: string;
  protocol?: 'tcp' | 'udp' | 'icmp' | 'all';
  icmpType?: number;
  icmpCode?: number;
  log?: boolean;
}
export interface DiskLimits {
  blockLimit?: number;
  block?: number;
  blockSoft?: number;
  blockHard?: number;
  inodeLimit?: number;
  inode?: number;
  inodeSoft?: number;
  inodeHard?: number;
  byteLimit?: number;
  byte?: number;
  byteSoft?: number;
  byteHard?: number;
}

/** What wardend serves. One implementation composes the Linux parts (the gardener). */
export interface WardenService {
  create(spec: CreateSpec): Promise<{ handle: string }>;
  stop(handle: string, opts: { background: boolean; kill: boolean }): Promise<void>;
  destroy(handle: string): Promise<void>;
  info(handle: string): Promise<ContainerInfo>;
  list(): Promise<string[]>;

  spawn(spec: SpawnSpec): Promise<{ jobId: number }>;
  /**
   * Waits for the job, consumes it (a second link → `no such job`). Aborted (the client left)
   * before the job ends, it rejects and leaves the job linkable.
   */
  link(handle: string, jobId: number, signal?: AbortSignal): Promise<JobResult>;
  /** Output as it is produced, then one final chunk with the exit status; consumes the job. */
  stream(handle: string, jobId: number, signal?: AbortSignal): AsyncIterable<StreamChunk>;
  run(spec: SpawnSpec, signal?: AbortSignal): Promise<JobResult>;

  netIn(spec: NetInSpec): Promise<{ hostPort: number; containerPort: number }>;
  netOut(spec: NetOutSpec): Promise<void>;
  copyIn(handle: string, srcPath: string, dstPath: string): Promise<void>;
  copyOut(handle: string, srcPath: string, dstPath: string, owner?: string): Promise<void>;

  /** Absent limit → read the current one. */
  limitMemory(handle: string, limitInBytes?: number): Promise<{ limitInBytes: number }>;
  limitDisk(handle: string, limits: DiskLimits): Promise<DiskLimits>;
  limitBandwidth(handle: string, rate?: number, burst?: number): Promise<{ rate: number; burst: number }>;
  limitCpu(handle: string, limitInShares?: number): Promise<{ limitInShares: number }>;

  /**
   * A connection began/stopped referencing a handle (grace_time counts from the last release).
   * The wire layer calls them in balanced pairs, once per connection and handle: retain before
   * the first request naming the handle is served (after Create succeeds, for its new handle),
   * release when the connection closes or its Destroy succeeds. A handle may be one that does
   * not exist (the request then fails): ignore it. Handles are the wire bytes as latin1 strings.
   */
  retain(handle: string): void;
  release(handle: string): void;

  /** Optional: called once when wardend shuts down, after the socket is closed. */
  close?(): Promise<void>;
}

/**
 * An error whose message goes to the client verbatim (the original strings, DESIGN §5), with
 * its stable code in the ErrorResponse's `data`.
 */
export class WardenError extends Error {
  override name = 'WardenError';
  readonly code: WardenErrorCode;
  constructor(code: WardenErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
