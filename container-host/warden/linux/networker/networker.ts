import { writeFile } from 'node:fs/promises';
import { WardenError, type NetInSpec, type NetOutSpec } from '../../server/service.ts';
import { PortPool } from '../pools/port-pool.ts';
import { Iptables, NetNames, netOutRule } from './iptables.ts';
import { Shaper, type Bandwidth } from './shaper.ts';
import { SubnetPool } from './subnet-pool.ts';
import { attachVeth, deleteLink } from './veth.ts';

/** What the depot remembers of a container's network (its record's `net`). */
export interface NetState {
  /** The /30's position in the pool: names the interfaces and chains. */
  index: number;
  hostIp: string;
  containerIp: string;
  /** net_in mappings; their host ports go back to the pool on destroy. */
  ports: Array<{ hostPort: number; containerPort: number }>;
  bandwidth?: Bandwidth;
}

export interface BandwidthStat {
  inRate: number;
  inBurst: number;
  outRate: number;
  outBurst: number;
}

/** The network part of the gardener: addresses, port mappings, outbound rules, shaping. */
export interface Networker {
  /** Picks the container's /30 before it starts (`Could not acquire network`); undefined: no network. */
  acquire(network?: string): NetState | undefined;
  /** Wires the running container in: veth pair into its init's netns, its iptables chains. */
  attach(net: NetState | undefined, initPid: number): Promise<void>;
  /** Removes what attach and later requests added and hands its addresses and ports back. */
  release(net: NetState | undefined): Promise<void>;
  /** A restored container keeps its /30 and ports (nothing is handed out twice). */
  claim(net: NetState | undefined): void;
  addresses(net: NetState | undefined): { hostIp?: string; containerIp?: string };
  bandwidthStat(net: NetState | undefined): BandwidthStat | undefined;
  netIn(net: NetState | undefined, spec: NetInSpec): Promise<{ hostPort: number; containerPort: number }>;
  netOut(net: NetState | undefined, spec: NetOutSpec): Promise<void>;
  limitBandwidth(net: NetState | undefined, rate?: number, burst?: number): Promise<Bandwidth>;
}

export interface NetworkConfig {
  /** Where each container's /30 comes from. */
  pool: string;
  /** net_in host ports: [first, first + size). */
  portPool: { first: number; size: number };
  /** Names this warden's interfaces and iptables chains (1-6 lowercase letters or digits). */
  prefix: string;
  mtu: number;
}

function noNetwork(): never {
  throw new WardenError('not_supported:network', 'this warden runs without container networking (network: false in its config)');
}

/** Containers with only loopback (config `network: false`). */
export class LoopbackNetworker implements Networker {
  acquire(network?: string): NetState | undefined {
    if (network) noNetwork();
    return undefined;
  }
  async attach(): Promise<void> {}
  async release(): Promise<void> {}
  claim(): void {}
  addresses(): { hostIp?: string; containerIp?: string } {
    return {};
  }
  bandwidthStat(): BandwidthStat | undefined {
    return undefined;
  }
  async netIn(): Promise<{ hostPort: number; containerPort: number }> {
    return noNetwork();
  }
  async netOut(): Promise<void> {
    return noNetwork();
  }
  async limitBandwidth(): Promise<Bandwidth> {
    return noNetwork();
  }
}

function netOf(net: NetState | undefined): NetState {
  if (!net) throw new WardenError('not_supported:network', 'the container has no network');
  return net;
}

/**
 * A /30 per container on a veth pair, net_in DNATs, default-deny outbound with net_out
 * allows, tc shaping (guardian's kawasaki shape: pools, iptables, veth and shaper apart).
 */
export class VethNetworker implements Networker {
  readonly names: NetNames;
  readonly subnets: SubnetPool;
  readonly ports: PortPool;
  readonly iptables: Iptables;
  readonly #shaper = new Shaper();
  readonly #mtu: number;

  constructor(config: NetworkConfig) {
    this.names = new NetNames(config.prefix);
    this.subnets = new SubnetPool(config.pool);
    this.ports = new PortPool(config.portPool.first, config.portPool.size);
    this.iptables = new Iptables(this.names, config.pool);
    this.#mtu = config.mtu;
  }

  /** Host settings the networker relies on: forwarding on, its global chains in place. */
  async start(): Promise<void> {
    await writeFile('/proc/sys/net/ipv4/ip_forward', '1');
    await this.iptables.ensureGlobal();
  }

  acquire(network?: string): NetState {
    const s = this.subnets.acquire(network);
    return { index: s.index, hostIp: s.hostIp, containerIp: s.containerIp, ports: [] };
  }

  async attach(net: NetState | undefined, initPid: number): Promise<void> {
    if (!net) return;
    // Chains first: the container is never reachable or able to send before its rules exist.
    await this.iptables.addContainer(net.index);
    await attachVeth({ hostIface: this.names.hostIface(net.index), initPid, hostIp: net.hostIp, containerIp: net.containerIp, mtu: this.#mtu });
  }

  async release(net: NetState | undefined): Promise<void> {
    if (!net) return;
    await this.iptables.removeContainer(net.index);
    await deleteLink(this.names.hostIface(net.index));
    await deleteLink(this.names.ifb(net.index)); // may exist even when setting the limit failed
    for (const p of net.ports) this.ports.release(p.hostPort);
    this.subnets.release(net.index);
  }

  claim(net: NetState | undefined): void {
    if (!net) return;
    this.subnets.claim(net.index);
    for (const p of net.ports) this.ports.claim(p.hostPort);
  }

  addresses(net: NetState | undefined): { hostIp?: string; containerIp?: string } {
    return net ? { hostIp: net.hostIp, containerIp: net.containerIp } : {};
  }

  bandwidthStat(net: NetState | undefined): BandwidthStat | undefined {
    if (!net) return undefined;
    const b = net.bandwidth;
    return b ? { inRate: b.rate, inBurst: b.burst, outRate: b.rate, outBurst: b.burst } : { inRate: 0, inBurst: 0, outRate: 0, outBurst: 0 };
  }

  async netIn(state: NetState | undefined, spec: NetInSpec): Promise<{ hostPort: number; containerPort: number }> {
    const net = netOf(state);
    for (const p of [spec.hostPort, spec.containerPort]) {
      if (p !== undefined && !(Number.isInteger(p) && p >= 1 && p <= 65535)) throw new WardenError('bad_request', `invalid port: ${p}`);
    }
    let hostPort: number;
    if (!spec.hostPort) {
      hostPort = this.ports.acquire();
    } else {
      hostPort = spec.hostPort!;
      if (this.ports.has(hostPort)) throw new WardenError('bad_request', `host port ${hostPort} is already mapped`);
      this.ports.claim(hostPort);
    }
    const containerPort = spec.containerPort || hostPort;
    try {
      await this.iptables.addNetIn(net.index, net.containerIp, hostPort, containerPort);
    } catch (e) {
      this.ports.release(hostPort);
      throw e;
    }
    net.ports.push({ hostPort, containerPort });
    return { hostPort, containerPort };
  }

  async netOut(state: NetState | undefined, spec: NetOutSpec): Promise<void> {
    const rule = netOutRule(spec); // validation errors before "no network", as the original
    const net = netOf(state);
    await this.iptables.addNetOut(net.index, spec.handle, rule);
  }

  async limitBandwidth(state: NetState | undefined, rate?: number, burst?: number): Promise<Bandwidth> {
    const net = netOf(state);
    if (rate === undefined || rate === 0) return net.bandwidth ?? { rate: 0, burst: 0 };
    const b = { rate, burst: burst ?? 0 };
    await this.#shaper.apply(this.names.hostIface(net.index), this.names.ifb(net.index), b, this.#mtu, !net.bandwidth);
    net.bandwidth = b;
    return b;
  }
}
