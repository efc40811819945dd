/**
 * Tomcat's JVM memory options from the app's quota (`resources.memory`, MB).
 *
 * The container is killed when the whole process passes its quota, not just the heap: v1 set
 * -Xmx to the quota and was OOM-killed. So the heap gets what the JVM's non-heap memory leaves:
 *
 *   heap = 75% of the quota − 64 MB, at least 64 MB
 *
 * - The fixed 64 MB is what even a small Tomcat uses outside its heap whatever the quota: about
 *   35–45 MB of metaspace (Tomcat's own classes and a small app's), and the thread stacks of the
 *   ~25 threads it starts with (up to 512 KB each with -Xss512k, usually far less touched).
 * - The other 25% grows with the app: the JIT's code cache, the GC's card table and remembered
 *   sets (a few % of the heap), NIO buffers, more threads under load, malloc's arenas.
 * - Metaspace and the code cache are capped so that class-heavy apps (Spring) fail with a
 *   clear OutOfMemoryError instead of growing the process past the quota:
 *   MaxMetaspaceSize = quota/8 within [64, 256] MB, ReservedCodeCacheSize = quota/16 within
 *   [32, 128] MB. At 256 MB: heap 128 + metaspace ≤ 64 + code ≤ 32 = 224, 32 MB left for
 *   stacks, GC and native; at 1 GB: 704 + 128 + 64 = 896, 128 MB left.
 * - Below ~192 MB the 64 MB floor wins and a Tomcat cannot fit: staging warns.
 * - -XX:+ExitOnOutOfMemoryError: a JVM out of heap exits (the agent sees a crash and restarts
 *   it) instead of limping on; MALLOC_ARENA_MAX=2 keeps glibc from reserving an arena per
 *   thread, the usual source of unexplained RSS growth in JVMs.
 */
export const HEAP_FLOOR_MB = 64;
export const NON_HEAP_FIXED_MB = 64;
export const MIN_QUOTA_MB = 192;

export interface TomcatMemory {
  heapMb: number;
  metaspaceMb: number;
  codeCacheMb: number;
  /** JVM options, in a fixed order. */
  options: string[];
  /** Environment for the JVM process. */
  environment: Record<string, string>;
}

const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, n));

export function tomcatMemory(quotaMb: number): TomcatMemory {
  const heapMb = Math.max(HEAP_FLOOR_MB, Math.floor(quotaMb * 0.75) - NON_HEAP_FIXED_MB);
  const metaspaceMb = clamp(Math.floor(quotaMb / 8), 64, 256);
  const codeCacheMb = clamp(Math.floor(quotaMb / 16), 32, 128);
  return {
    heapMb,
    metaspaceMb,
    codeCacheMb,
    options: [`-Xmx${heapMb}m`, `-XX:MaxMetaspaceSize=${metaspaceMb}m`, `-XX:ReservedCodeCacheSize=${codeCacheMb}m`, '-Xss512k', '-XX:+ExitOnOutOfMemoryError'],
    environment: { MALLOC_ARENA_MAX: '2' },
  };
}
