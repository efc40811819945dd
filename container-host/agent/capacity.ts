/**
 * What this host may give instances (memory and disk, MB), what each instance holds, and what
 * is left. A reservation is taken when a request is accepted and given back when its instance
 * stops or gives up, so the poller never takes more work than the host can run.
 */

export interface Resources {
  memoryMb: number;
  diskMb: number;
}

export interface FreeCapacity extends Resources {
  /** Instances holding a reservation (running, starting or waiting to restart). */
  instances: number;
}

/** The smallest instance a StartRequest may ask for (contracts/instances.ts): below it the host is full. */
export const SMALLEST_INSTANCE: Resources = { memoryMb: 16, diskMb: 16 };

export class Capacity {
  readonly total: Resources;
  readonly #held = new Map<string, Resources>();
  readonly #listeners = new Set<() => void>();

  constructor(total: Resources) {
    this.total = total;
  }

  free(): FreeCapacity {
    let memoryMb = this.total.memoryMb;
    let diskMb = this.total.diskMb;
    for (const r of this.#held.values()) {
      memoryMb -= r.memoryMb;
      diskMb -= r.diskMb;
    }
    return { memoryMb, diskMb, instances: this.#held.size };
  }

  /** Whether `count` more instances of `each` fit now. */
  fits(each: Resources, count = 1): boolean {
    const free = this.free();
    return free.memoryMb >= each.memoryMb * count && free.diskMb >= each.diskMb * count;
  }

  /** Whether `count` instances of `each` would fit even on this host empty: if not, waiting never helps. */
  couldEverFit(each: Resources, count = 1): boolean {
    return this.total.memoryMb >= each.memoryMb * count && this.total.diskMb >= each.diskMb * count;
  }

  /** Room for at least the smallest instance: worth taking start requests. */
  hasRoom(): boolean {
    return this.fits(SMALLEST_INSTANCE);
  }

  /**
   * Takes a reservation under `key` (an instance id) without checking the total: callers check
   * `fits` first; instances adopted after a restart are held even where the host is now smaller.
   */
  hold(key: string, r: Resources): void {
    this.#held.set(key, { ...r });
    this.#changed();
  }

  release(key: string): void {
    if (this.#held.delete(key)) this.#changed();
  }

  /** Called after every change; returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }
}
