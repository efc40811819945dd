import { WardenError } from '../../server/service.ts';

export const NO_PORT_AVAILABLE = 'no port available';

/**
 * Host ports for net_in, from a range above the kernel's ephemeral ports (32768–60999 by
 * default) so that a mapping never collides with an outgoing connection's local port.
 */
export class PortPool {
  readonly first: number;
  readonly size: number;
  readonly #used = new Set<number>();
  #next = 0;

  constructor(first: number, size: number) {
    this.first = first;
    this.size = size;
  }

  acquire(): number {
    for (let i = 0; i < this.size; i++) {
      const port = this.first + ((this.#next + i) % this.size);
      if (!this.#used.has(port)) {
        this.#used.add(port);
        this.#next = (port - this.first + 1) % this.size;
        return port;
      }
    }
    throw new WardenError('no_port', NO_PORT_AVAILABLE);
  }

  /** Marks a port taken: a restored mapping, or one a client asked for by number. */
  claim(port: number): void {
    this.#used.add(port);
  }

  has(port: number): boolean {
    return this.#used.has(port);
  }

  release(port: number): void {
    this.#used.delete(port);
  }
}
