/**
 * The local stack's wardend: its config (own depot and rootfs under the data dir, socket
 * under the state dir, the network names, pools and cgroup parent of the stack's slot), and
 * the teardown `up` owes the host on exit. wardend keeps containers across its own restarts
 * by design, so stopping the stack means destroying them explicitly, then removing the
 * iptables chains and cgroup parent wardend set up once.
 */
import { readdirSync, readFileSync, rmdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { WardenClient } from '../container-host/warden/client/client.ts';
import { Iptables, NetNames } from '../container-host/warden/linux/networker/iptables.ts';
import type { LocalSlot } from './slots.ts';

export interface WardendLayout {
  configFile: string;
  socket: string;
  depotDir: string;
  rootfsDir: string;
}

export function wardendLayout(dataDir: string, stateDir: string): WardendLayout {
  const dir = join(dataDir, 'warden');
  return { configFile: join(dir, 'wardend.json'), socket: join(stateDir, 'warden.sock'), depotDir: join(dir, 'depot'), rootfsDir: join(dir, 'rootfs') };
}

/** The slot the data dir's depot was last used with (its containers' network names), if any. */
export function previousSlot(layout: WardendLayout): number | undefined {
  try {
    const config = JSON.parse(readFileSync(layout.configFile, 'utf8')) as { network?: { prefix?: string } };
    const m = /^dwl(\d+)$/.exec(config.network?.prefix ?? '');
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the wardend config for this stack; returns it (wire keys and Linux backend keys). */
export function writeWardendConfig(layout: WardendLayout, slot: Omit<LocalSlot, 'release'>): Record<string, unknown> {
  const config = {
    socket: layout.socket,
    socketMode: '0660',
    health: null,
    depotDir: layout.depotDir,
    rootfsDir: layout.rootfsDir,
    cgroupParent: slot.cgroupParent,
    stopTimeoutMs: 5000,
    network: { pool: slot.pool, prefix: slot.prefix, portPool: slot.ports, mtu: 1500 },
  };
  mkdirSync(join(layout.configFile, '..'), { recursive: true });
  writeFileSync(layout.configFile, `${JSON.stringify(config, null, 2)}\n`);
  return config;
}

/** Destroys every container wardend holds, through its socket; returns how many. */
export async function destroyAllContainers(socket: string): Promise<number> {
  const client = await WardenClient.connect(socket);
  try {
    const { handles = [] } = await client.call('List', {});
    const results = await Promise.allSettled(handles.map((handle) => client.call('Destroy', { handle })));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${handles[i].toString()}: ${(r.reason as Error).message}`] : []));
    if (failed.length) throw new Error(`wardend could not destroy ${failed.length} container(s): ${failed.join('; ')}`);
    return handles.length;
  } finally {
    client.close();
  }
}

/** Handles still in the depot (a container wardend did not get to destroy). */
export function depotHandles(layout: WardendLayout): string[] {
  try {
    return readdirSync(layout.depotDir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name);
  } catch {
    return [];
  }
}

/**
 * What is left once wardend is gone and its depot is empty: the global iptables chains and
 * hooks of the slot's prefix, and the cgroup parent directories.
 */
export async function removeHostSetup(slot: Omit<LocalSlot, 'release'>): Promise<void> {
  await new Iptables(new NetNames(slot.prefix), slot.pool).removeGlobal();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!post || !/^cgroup2? /.test(post)) continue;
    try {
      rmdirSync(join(pre.split(' ')[4], slot.cgroupParent));
    } catch {
      // absent in this hierarchy, or a container's cgroup is still inside (then the next
      // wardend start cleans it)
    }
  }
}

/**
 * The last resort when wardend died with containers in its depot: the Linux backend, in this
 * process, restores them from the depot and destroys them.
 */
export async function destroyFromDepot(config: Record<string, unknown>): Promise<void> {
  const { createLinuxWardenService } = await import('../container-host/warden/linux/index.ts');
  const backend = await createLinuxWardenService(config as Parameters<typeof createLinuxWardenService>[0]);
  try {
    await backend.destroyAll();
  } finally {
    await backend.close();
  }
}
