import { WardenError } from '../../server/service.ts';
import { formatIp, parseCidr, parseIp, type Cidr } from './ipv4.ts';

export const COULD_NOT_ACQUIRE_NETWORK = 'Could not acquire network';

/** One container's /30: network, host side (.1), container side (.2), broadcast. */
export interface Subnet {
  /** Position of the /30 in the pool: names the container's interfaces and chains. */
  index: number;
  network: string;
  hostIp: string;
  containerIp: string;
}

/**
 * Hands out /30 blocks of a pool (guardian's subnets pool, warden's pool/network): the lowest
 * free one, or the one holding a requested address. A /30 is the smallest block with two usable
 * addresses, so a container's traffic to another container always goes through the host.
 */
export class SubnetPool {
  readonly pool: Cidr;
  readonly size: number;
  readonly #used = new Set<number>();
  #next = 0;

  constructor(cidr: string) {
    const pool = parseCidr(cidr);
    if (!pool || pool.prefix > 30) throw new Error(`network pool must be a CIDR block of at least a /30: ${cidr}`);
    this.pool = pool;
    this.size = 2 ** (30 - pool.prefix);
  }

  subnet(index: number): Subnet {
    const base = this.pool.base + index * 4;
    return { index, network: `${formatIp(base)}/30`, hostIp: formatIp(base + 1), containerIp: formatIp(base + 2) };
  }

  /** A free /30; with `requested`, the /30 holding that address (it must be in the pool and free). */
  acquire(requested?: string): Subnet {
    if (requested) {
      const ip = parseIp(requested);
      const index = ip === undefined ? -1 : Math.floor((ip - this.pool.base) / 4);
      if (ip === undefined || index < 0 || index >= this.size || this.#used.has(index)) throw new WardenError('no_network', COULD_NOT_ACQUIRE_NETWORK);
      this.#used.add(index);
      return this.subnet(index);
    }
    for (let i = 0; i < this.size; i++) {
      const index = (this.#next + i) % this.size;
      if (!this.#used.has(index)) {
        this.#used.add(index);
        this.#next = (index + 1) % this.size;
        return this.subnet(index);
      }
    }
    throw new WardenError('no_network', COULD_NOT_ACQUIRE_NETWORK);
  }

  /** Marks a /30 taken (restoring containers from the depot). */
  claim(index: number): void {
    this.#used.add(index);
  }

  release(index: number): void {
    this.#used.delete(index);
  }
}
