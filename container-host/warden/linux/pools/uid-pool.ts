import { WardenError } from '../../server/service.ts';

/** Hands out one uid per container so that no two containers share file ownership. */
export class UidPool {
  readonly #first: number;
  readonly #size: number;
  readonly #used = new Set<number>();
  #next = 0;

  constructor(first: number, size: number) {
    this.#first = first;
    this.#size = size;
  }

  acquire(): number {
    for (let i = 0; i < this.#size; i++) {
      const uid = this.#first + ((this.#next + i) % this.#size);
      if (!this.#used.has(uid)) {
        this.#used.add(uid);
        this.#next = (uid - this.#first + 1) % this.#size;
        return uid;
      }
    }
    throw new WardenError('no_uid', `no uid available (pool of ${this.#size} starting at ${this.#first} is exhausted)`);
  }

  /** Marks a uid taken (restoring containers from the depot). */
  claim(uid: number): void {
    this.#used.add(uid);
  }

  /** The next acquire looks from just after `uid` on (a restart resumes where it was). */
  resumeAfter(uid: number): void {
    if (uid >= this.#first && uid < this.#first + this.#size) this.#next = (uid - this.#first + 1) % this.#size;
  }

  release(uid: number): void {
    this.#used.delete(uid);
  }
}
