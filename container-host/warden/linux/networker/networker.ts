import { WardenError, type NetInSpec, type NetOutSpec } from '../../server/service.ts';

/** The network part of the gardener: addresses, port mappings, outbound rules, shaping. */
export interface Networker {
  /** host_ip / container_ip for info; absent when the container has no network of its own. */
  addresses(handle: string): { hostIp?: string; containerIp?: string };
  netIn(spec: NetInSpec): Promise<{ hostPort: number; containerPort: number }>;
  netOut(spec: NetOutSpec): Promise<void>;
  limitBandwidth(handle: string, rate?: number, burst?: number): Promise<{ rate: number; burst: number }>;
}

function notYet(request: string): never {
  throw new WardenError(`${request} is not supported yet (Warden daemon II adds container networking)`);
}

/**
 * Each container has a network namespace with only loopback (brought up by its init); real
 * networking (veth, /30 pool, iptables, tc) is issue 6.
 */
export class LoopbackNetworker implements Networker {
  addresses(): { hostIp?: string; containerIp?: string } {
    return {};
  }
  async netIn(): Promise<{ hostPort: number; containerPort: number }> {
    return notYet('net_in');
  }
  async netOut(): Promise<void> {
    return notYet('net_out');
  }
  async limitBandwidth(): Promise<{ rate: number; burst: number }> {
    return notYet('limit_bandwidth');
  }
}
