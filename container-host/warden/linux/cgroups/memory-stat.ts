import type { MemoryStat } from '../../server/service.ts';

/** The 28 fields of DESIGN §5's memory_stat, keyed as cgroup v1's memory.stat spells them. */
export const V1_MEMORY_STAT_KEYS: ReadonlyArray<[keyof MemoryStat, string]> = [
  ['cache', 'cache'],
  ['rss', 'rss'],
  ['mappedFile', 'mapped_file'],
  ['pgpgin', 'pgpgin'],
  ['pgpgout', 'pgpgout'],
  ['swap', 'swap'],
  ['pgfault', 'pgfault'],
  ['pgmajfault', 'pgmajfault'],
  ['inactiveAnon', 'inactive_anon'],
  ['activeAnon', 'active_anon'],
  ['inactiveFile', 'inactive_file'],
  ['activeFile', 'active_file'],
  ['unevictable', 'unevictable'],
  ['hierarchicalMemoryLimit', 'hierarchical_memory_limit'],
  ['hierarchicalMemswLimit', 'hierarchical_memsw_limit'],
  ['totalCache', 'total_cache'],
  ['totalRss', 'total_rss'],
  ['totalMappedFile', 'total_mapped_file'],
  ['totalPgpgin', 'total_pgpgin'],
  ['totalPgpgout', 'total_pgpgout'],
  ['totalSwap', 'total_swap'],
  ['totalPgfault', 'total_pgfault'],
  ['totalPgmajfault', 'total_pgmajfault'],
  ['totalInactiveAnon', 'total_inactive_anon'],
  ['totalActiveAnon', 'total_active_anon'],
  ['totalInactiveFile', 'total_inactive_file'],
  ['totalActiveFile', 'total_active_file'],
  ['totalUnevictable', 'total_unevictable'],
];

/** Parses a flat-keyed cgroup file ("key value" lines) into numbers. */
export function parseFlatKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) out.set(key, value === 'max' ? Infinity : Number(value));
  }
  return out;
}

export function memoryStatFromV1(text: string): MemoryStat {
  const kv = parseFlatKeyed(text);
  const stat = {} as MemoryStat;
  for (const [field, key] of V1_MEMORY_STAT_KEYS) stat[field] = kv.get(key) ?? 0;
  return stat;
}
