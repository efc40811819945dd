/**
 * Host resources one local stack's wardend must not share with another on the same machine
 * (a second `up` with its own state dir, the test suites running side by side): the names of
 * its interfaces and iptables chains, its subnet pool, its net_in ports and its cgroup parent.
 * Each running stack holds one numbered slot, claimed by a pid file.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive } from './pids.ts';

export const SLOT_COUNT = 16;
const PORTS_PER_SLOT = 100;

export interface LocalSlot {
  index: number;
  /** Names this slot's veths and iptables chains (wardend's `network.prefix`). */
  prefix: string;
  /**
   * A /20 of 100.101.0.0/16 (CGNAT space; 100.96/16 is wardend's default on a container host,
   * 100.97–100.99 are the warden tests'): 1024 containers of a /30 each.
   */
  pool: string;
  /** Below the kernel's ephemeral range (32768+) and the container host's 61001+. */
  ports: { first: number; size: number };
  cgroupParent: string;
  release(): void;
}

export function slotResources(index: number): Omit<LocalSlot, 'release'> {
  return {
    index,
    prefix: `dwl${index}`,
    pool: `100.101.${index * 16}.0/20`,
    ports: { first: 30000 + index * PORTS_PER_SLOT, size: PORTS_PER_SLOT },
    cgroupParent: index === 0 ? 'dropwarden-local' : `dropwarden-local-${index}`,
  };
}

export class NoFreeSlotError extends Error {
  override name = 'NoFreeSlotError';
}

function slotsDir(): string {
  for (const dir of ['/run/dropwarden/local-slots', join(tmpdir(), 'dropwarden-local-slots')]) {
    try {
      mkdirSync(dir, { recursive: true });
      return dir;
    } catch {
      // not writable here: try the next
    }
  }
  throw new NoFreeSlotError('cannot create a directory for local stack slots under /run or the temp dir');
}

/** Creates the slot's pid file unless a live process holds it; a dead holder's file is taken over. */
function tryClaim(file: string, pid: number): boolean {
  try {
    writeFileSync(file, String(pid), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const holder = Number(readFileSync(file, 'utf8').trim());
  if (holder && alive(holder)) return false;
  rmSync(file, { force: true });
  try {
    writeFileSync(file, String(pid), { flag: 'wx' });
    return true;
  } catch {
    return false; // another process took it over between the two steps
  }
}

/**
 * Claims a free slot, `preferred` first (a restarted stack gets the slot its wardend's depot
 * was made with, so restored containers keep their network names).
 */
export function claimSlot(preferred?: number, pid = process.pid): LocalSlot {
  const dir = slotsDir();
  const order = [...(preferred !== undefined && preferred >= 0 && preferred < SLOT_COUNT ? [preferred] : []), ...Array(SLOT_COUNT).keys()];
  for (const index of new Set(order)) {
    const file = join(dir, `${index}.pid`);
    if (!tryClaim(file, pid)) continue;
    return {
      ...slotResources(index),
      release() {
        try {
          if (Number(readFileSync(file, 'utf8').trim()) === pid) rmSync(file, { force: true });
        } catch {
          // already gone
        }
      },
    };
  }
  throw new NoFreeSlotError(`all ${SLOT_COUNT} local stack slots are taken (${dir}): stop another dropwarden up first`);
}
