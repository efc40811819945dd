import type * as wire from '../protocol/types.ts';
import type { ContainerInfo, JobResult, NetOutSpec, SpawnSpec, StreamChunk } from './service.ts';
import { handleToService } from './handles.ts';

/** Between the wire's snake_case messages and the service's camelCase types (service.ts). */

const toCamel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const toSnake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A flat object with its keys renamed; undefined values left out (they would be "present"). */
function rename<T>(obj: object, name: (key: string) => string): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[name(k)] = v;
  return out as T;
}

export const camelKeys = <T>(obj: object): T => rename<T>(obj, toCamel);
export const snakeKeys = <T>(obj: object): T => rename<T>(obj, toSnake);

export function spawnSpec(req: wire.SpawnRequest): SpawnSpec {
  return {
    handle: handleToService(req.handle),
    script: req.script,
    privileged: req.privileged ?? false,
    rlimits: req.rlimits && { ...req.rlimits },
    discardOutput: req.discard_output ?? false,
    logTag: req.log_tag,
  };
}

const PROTOCOLS = ['tcp', 'udp', 'icmp', 'all'] as const;

export function netOutSpec(req: wire.NetOutRequest): NetOutSpec {
  return {
    handle: handleToService(req.handle),
    network: req.network,
    port: req.port,
    portRange: req.port_range,
    protocol: req.protocol === undefined ? undefined : PROTOCOLS[req.protocol],
    icmpType: req.icmp_type,
    icmpCode: req.icmp_code,
    log: req.log,
  };
}

export function infoResponse(info: ContainerInfo): wire.InfoResponse {
  return {
    state: info.state,
    events: info.events,
    host_ip: info.hostIp,
    container_ip: info.containerIp,
    container_path: info.containerPath,
    memory_stat: info.memoryStat && snakeKeys(info.memoryStat),
    cpu_stat: info.cpuStat && { ...info.cpuStat },
    disk_stat: info.diskStat && snakeKeys(info.diskStat),
    bandwidth_stat: info.bandwidthStat && snakeKeys(info.bandwidthStat),
    job_ids: info.jobIds,
  };
}

export function jobResponse(result: JobResult): wire.LinkResponse {
  return {
    exit_status: result.exitStatus,
    stdout: result.stdout,
    stderr: result.stderr,
    info: infoResponse(result.info),
  };
}

export function streamResponse(chunk: StreamChunk): wire.StreamResponse {
  if ('exitStatus' in chunk) return { exit_status: chunk.exitStatus, info: infoResponse(chunk.info) };
  return { name: chunk.name, data: chunk.data };
}
