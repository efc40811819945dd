/**
 * JVM memory sizing from the app's quota (`resources.memory`). v1 set -Xmx to the whole quota
 * and the JVM was OOM-killed: the heap is only part of a JVM's footprint (metaspace, code
 * cache, thread stacks, GC and direct buffers). We keep a quarter of the quota, at least 96 MB,
 * for non-heap memory and bound metaspace and thread stacks so the rest stays under the limit.
 */
export interface JvmMemory {
  heapMb: number;
  metaspaceMb: number;
  options: string[];
}

export function jvmMemory(memoryMb: number): JvmMemory {
  const reserve = Math.max(96, Math.ceil(memoryMb / 4));
  const heapMb = Math.max(16, memoryMb - reserve);
  const metaspaceMb = Math.max(32, Math.min(256, Math.floor(reserve / 2)));
  return {
    heapMb,
    metaspaceMb,
    options: [`-Xmx${heapMb}m`, `-XX:MaxMetaspaceSize=${metaspaceMb}m`, '-Xss512k'],
  };
}
