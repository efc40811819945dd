/** setTimeout's longest delay (2^31-1 ms, ~24.8 days): a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The grace clocks, one per container (DESIGN §5: a container no connection has referenced for
 * grace_time is destroyed). A timer holds at most MAX_TIMER_MS, so a longer wait re-arms in
 * steps, asking `due` again each time (it counts from `idleSince`, which a restart keeps).
 */
export class GraceTimers {
  readonly #timers = new Map<string, NodeJS.Timeout>();

  /**
   * Calls `expire` at `due()` (a Date.now() time). `due` returning undefined leaves the clock as
   * it is (the container is referenced, or going away).
   */
  arm(handle: string, due: () => number | undefined, expire: () => void): void {
    const at = due();
    if (at === undefined) return;
    this.clear(handle);
    const leftMs = at - Date.now();
    const timer =
      leftMs > MAX_TIMER_MS
        ? setTimeout(() => this.arm(handle, due, expire), MAX_TIMER_MS)
        : setTimeout(
            () => {
              this.#timers.delete(handle);
              expire();
            },
            Math.max(0, leftMs),
          );
    timer.unref();
    this.#timers.set(handle, timer);
  }

  clear(handle: string): void {
    clearTimeout(this.#timers.get(handle));
    this.#timers.delete(handle);
  }

  /** Every clock stops (the daemon closes; a restart re-arms them from the depot). */
  close(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }
}
