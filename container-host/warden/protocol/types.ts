/**
 * The messages of DESIGN.md §5 as plain objects, field names as on the wire (snake_case).
 * Presence is the object's own keys: a field that is absent (or undefined) is not encoded, a field
 * that is set is encoded even when it holds its default (`exit_status: 0` → `18 00`).
 * Bytes fields (handles, output) are Buffers; u64 fields are numbers (exact up to 2^53).
 */

export interface BindMount {
  src_path: string;
  dst_path: string;
  /** RO = 0, RW = 1 */
  mode: number;
}

export interface ResourceLimits {
  as?: number;
  core?: number;
  cpu?: number;
  data?: number;
  fsize?: number;
  locks?: number;
  memlock?: number;
  msgqueue?: number;
  nice?: number;
  nofile?: number;
  nproc?: number;
  rss?: number;
  rtprio?: number;
  sigpending?: number;
  stack?: number;
}

export interface MemoryStat {
  cache?: number;
  rss?: number;
  mapped_file?: number;
  pgpgin?: number;
  pgpgout?: number;
  swap?: number;
  pgfault?: number;
  pgmajfault?: number;
  inactive_anon?: number;
  active_anon?: number;
  inactive_file?: number;
  active_file?: number;
  unevictable?: number;
  hierarchical_memory_limit?: number;
  hierarchical_memsw_limit?: number;
  total_cache?: number;
  total_rss?: number;
  total_mapped_file?: number;
  total_pgpgin?: number;
  total_pgpgout?: number;
  total_swap?: number;
  total_pgfault?: number;
  total_pgmajfault?: number;
  total_inactive_anon?: number;
  total_active_anon?: number;
  total_inactive_file?: number;
  total_active_file?: number;
  total_unevictable?: number;
}

export interface InfoResponse {
  state?: string;
  events?: string[];
  host_ip?: string;
  container_ip?: string;
  container_path?: string;
  memory_stat?: MemoryStat;
  cpu_stat?: { usage?: number; user?: number; system?: number };
  disk_stat?: { bytes_used?: number; inodes_used?: number };
  bandwidth_stat?: { in_rate?: number; in_burst?: number; out_rate?: number; out_burst?: number };
  job_ids?: number[];
}

export interface ErrorResponse {
  message?: string;
  backtrace?: string[];
  data?: string;
}

export interface CreateRequest {
  bind_mounts?: BindMount[];
  grace_time?: number;
  handle?: Buffer;
  network?: string;
  rootfs?: string;
}
export interface CreateResponse {
  handle: Buffer;
}

export interface StopRequest {
  handle: Buffer;
  background?: boolean;
  kill?: boolean;
}
export interface DestroyRequest {
  handle: Buffer;
}
export interface InfoRequest {
  handle: Buffer;
}

export interface SpawnRequest {
  handle: Buffer;
  script: string;
  privileged?: boolean;
  rlimits?: ResourceLimits;
  discard_output?: boolean;
  log_tag?: string;
}
export interface SpawnResponse {
  job_id: number;
}

export interface LinkRequest {
  handle: Buffer;
  job_id: number;
}
export interface LinkResponse {
  exit_status?: number;
  stdout?: Buffer;
  stderr?: Buffer;
  info?: InfoResponse;
}
export type RunRequest = SpawnRequest;
export type RunResponse = LinkResponse;

export interface StreamRequest {
  handle: Buffer;
  job_id: number;
}
export interface StreamResponse {
  name?: string;
  data?: Buffer;
  exit_status?: number;
  info?: InfoResponse;
}

export interface NetInRequest {
  handle: Buffer;
  container_port?: number;
  host_port?: number;
}
export interface NetInResponse {
  host_port: number;
  container_port: number;
}

export interface NetOutRequest {
  handle: Buffer;
  network?: string;
  port?: number;
  port_range?: string;
  /** TCP = 0, UDP = 1, ICMP = 2, ALL = 3 */
  protocol?: number;
  icmp_type?: number;
  icmp_code?: number;
  log?: boolean;
}

export interface CopyInRequest {
  handle: Buffer;
  src_path: string;
  dst_path: string;
}
export interface CopyOutRequest {
  handle: Buffer;
  src_path: string;
  dst_path: string;
  owner?: string;
}

export interface LimitMemoryRequest {
  handle: Buffer;
  limit_in_bytes?: number;
}
export interface LimitMemoryResponse {
  limit_in_bytes?: number;
}

export interface DiskLimitFields {
  block_limit?: number;
  block?: number;
  block_soft?: number;
  block_hard?: number;
  inode_limit?: number;
  inode?: number;
  inode_soft?: number;
  inode_hard?: number;
  byte_limit?: number;
  byte?: number;
  byte_soft?: number;
  byte_hard?: number;
}
export interface LimitDiskRequest extends DiskLimitFields {
  handle: Buffer;
}
export type LimitDiskResponse = DiskLimitFields;

export interface LimitBandwidthRequest {
  handle: Buffer;
  rate?: number;
  burst?: number;
}
export interface LimitBandwidthResponse {
  rate: number;
  burst: number;
}

export interface LimitCpuRequest {
  handle: Buffer;
  limit_in_shares?: number;
}
export interface LimitCpuResponse {
  limit_in_shares?: number;
}

export interface EchoRequest {
  message: string;
}
export interface EchoResponse {
  message: string;
}
export interface ListResponse {
  handles?: Buffer[];
}

type Empty = Record<string, never>;

/** Request and response shape of every request type, by its §5 name. */
export interface WardenCalls {
  Create: { request: CreateRequest; response: CreateResponse };
  Stop: { request: StopRequest; response: Empty };
  Destroy: { request: DestroyRequest; response: Empty };
  Info: { request: InfoRequest; response: InfoResponse };
  Spawn: { request: SpawnRequest; response: SpawnResponse };
  Link: { request: LinkRequest; response: LinkResponse };
  Run: { request: RunRequest; response: RunResponse };
  Stream: { request: StreamRequest; response: StreamResponse };
  NetIn: { request: NetInRequest; response: NetInResponse };
  NetOut: { request: NetOutRequest; response: Empty };
  CopyIn: { request: CopyInRequest; response: Empty };
  CopyOut: { request: CopyOutRequest; response: Empty };
  LimitMemory: { request: LimitMemoryRequest; response: LimitMemoryResponse };
  LimitDisk: { request: LimitDiskRequest; response: LimitDiskResponse };
  LimitBandwidth: { request: LimitBandwidthRequest; response: LimitBandwidthResponse };
  LimitCpu: { request: LimitCpuRequest; response: LimitCpuResponse };
  Ping: { request: Empty; response: Empty };
  List: { request: Empty; response: ListResponse };
  Echo: { request: EchoRequest; response: EchoResponse };
}

export type RequestName = keyof WardenCalls;
export type RequestOf<K extends RequestName> = WardenCalls[K]['request'];
export type ResponseOf<K extends RequestName> = WardenCalls[K]['response'];
