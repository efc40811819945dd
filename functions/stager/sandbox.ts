/**
 * The local sandbox for the programs staging runs on an app's behalf (DESIGN §8): every
 * `ctx.exec` of a plugin. The program runs
 *   - as a uid of its own (one per exec, from SANDBOX_UIDS), no groups, no capabilities, no_new_privs;
 *   - in its own pid namespace (with its own /proc: no other process is visible, so no
 *     `/proc/<pid>/environ` of the stager or the stack's parts) — when its first process ends,
 *     or the stager kills it at the deadline, the kernel kills every process left in it, so
 *     nothing that calls setsid or double-forks outlives it;
 *   - in its own mount, ipc and uts namespaces: /tmp, /var/tmp, /dev/shm and the work root are
 *     fresh, empty tmpfs mounts there (gone with it), with only the directories it may write
 *     (its droplet, its app's cache, the scratch a plugin names) bound back at their own paths and
 *     handed to its uid; everything else it sees belongs to root and is not writable by it;
 *   - with only the environment the plugin names (ExecOptions.env) and a plain PATH: no AWS_*,
 *     no DROPWARDEN_*, nothing of the stager's;
 *   - behind packet filters for its uid range: nothing to the host's own addresses (loopback, the
 *     emulator, the agent API, the Lambda runtime API), nor to link-local (169.254.169.254,
 *     169.254.170.2) or the IPv6 metadata address; other outbound traffic (package registries) passes.
 */
import { execFile } from 'node:child_process';
import { chown, lchown, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PluginError } from '../../plugins/api/types.ts';

const run = promisify(execFile);

/** The uids sandboxed programs run as: none is a user of the host. */
export const SANDBOX_UIDS = { first: 2_000_000, count: 1_000_000 } as const;

/** The environment every sandboxed program starts from; the plugin's ExecOptions.env is added. */
export const SANDBOX_BASE_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
};

/** The host lacks what the sandbox needs (a tool, namespaces, the packet filter): the reason says which. */
export class SandboxUnavailableError extends Error {
  override name = 'SandboxUnavailableError';
}

export type SandboxMode = 'namespaces' | 'env-only';

/** DROPWARDEN_SANDBOX's value: anything else is refused, naming the setting. */
export function sandboxMode(value: string | undefined): SandboxMode {
  if (value === undefined || value === '' || value === 'namespaces') return 'namespaces';
  if (value === 'env-only') return 'env-only';
  throw new PluginError(`DROPWARDEN_SANDBOX must be "namespaces" or "env-only", not ${JSON.stringify(value)}`);
}

export interface SandboxOptions {
  /** `env-only`: no namespaces, no uid, no filters — only the scrubbed environment (Lambda, DESIGN §8). */
  mode?: SandboxMode;
  /** The staging's uid (one per staging); a fresh one per program when absent. */
  uid?: number;
  /** The writable trees already chowned to `uid`, so each is walked once per staging. */
  handedOver?: Set<string>;
  /** Directories the program may write: bound back at their own paths and chowned to its uid. */
  writable: string[];
  /** Directories hidden behind a fresh tmpfs besides /tmp, /var/tmp and /dev/shm (the work root). */
  hide?: string[];
  /**
   * Directories kept visible, read-only, even where they lie under a hidden one: the stager's
   * own installation (its node, the npm it ships, the buildpacks), which may live under /tmp.
   */
  keep?: string[];
}

let nextUid = SANDBOX_UIDS.first + Math.floor(Math.random() * (SANDBOX_UIDS.count - 1000));
/** A uid no other live sandbox of this process holds; two processes collide by chance only (1 in 10⁶). */
export function sandboxUid(): number {
  nextUid = nextUid + 1 >= SANDBOX_UIDS.first + SANDBOX_UIDS.count ? SANDBOX_UIDS.first : nextUid + 1;
  return nextUid;
}

let filters: Promise<void> | undefined;
/** The packet filters for the sandbox uids, added once per process (and kept: they name only those uids). */
export function ensureSandboxFilters(): Promise<void> {
  filters ??= addFilters().catch((err: unknown) => {
    filters = undefined;
    throw err;
  });
  return filters;
}

const uidRange = `${SANDBOX_UIDS.first}-${SANDBOX_UIDS.first + SANDBOX_UIDS.count - 1}`;
const RULES: Array<[tool: string, match: string[]]> = [
  ['iptables', ['-m', 'addrtype', '--dst-type', 'LOCAL']],
  ['iptables', ['-d', '127.0.0.0/8']],
  ['iptables', ['-d', '169.254.0.0/16']],
  ['ip6tables', ['-m', 'addrtype', '--dst-type', 'LOCAL']],
  ['ip6tables', ['-d', '::1/128']],
  ['ip6tables', ['-d', 'fe80::/10']],
  ['ip6tables', ['-d', 'fd00:ec2::/32']],
];

async function addFilters(): Promise<void> {
  for (const [tool, match] of RULES) {
    const rule = ['OUTPUT', '-m', 'owner', '--uid-owner', uidRange, ...match, '-j', 'REJECT'];
    try {
      await run(tool, ['-w', '5', '-C', ...rule]);
      continue; // already there
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new SandboxUnavailableError(
          `the staging sandbox needs ${tool} (Debian: apt-get install iptables) to keep app code off the host and the metadata addresses`,
        );
      }
    }
    try {
      await run(tool, ['-w', '5', '-A', ...rule]);
    } catch (err) {
      throw new SandboxUnavailableError(
        `the staging sandbox could not add its packet filter (${tool} ${rule.join(' ')}): ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`,
      );
    }
  }
}

/** Hands a directory tree to the sandbox's uid (links are chowned themselves, never followed). */
export async function chownTree(dir: string, uid: number): Promise<void> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st) return;
  await chown(dir, uid, uid);
  if (!st.isDirectory()) return;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(p, uid);
    else await lchown(p, uid, uid);
  }
}

/**
 * The command line that runs `file args` in the sandbox as `uid`. The first process in the new
 * pid namespace is a root shell that sets up the mounts and then runs the program (not exec: it
 * stays pid 1, so the program keeps ordinary signal handling); `--kill-child` ties it to
 * `unshare`, so killing unshare's process group kills the namespace.
 */
export function sandboxCommand(file: string, args: string[], uid: number, options: SandboxOptions): { file: string; args: string[] } {
  const setup = [
    'set -e',
    // The directories it may write are held under /mnt while /tmp and the rest are covered.
    'mount -t tmpfs -o mode=0700 dw-hold /mnt',
    'i=0; for d in $DW_KEEP; do mkdir -p /mnt/k$i; mount --bind "$d" /mnt/k$i; i=$((i+1)); done',
    'i=0; for d in $DW_WRITABLE; do mkdir -p /mnt/$i; mount --bind "$d" /mnt/$i; i=$((i+1)); done',
    'for d in $DW_HIDE; do if [ -d "$d" ]; then mount -t tmpfs -o mode=1777,nosuid,nodev dw-tmp "$d"; fi; done',
    // Kept trees first (read-only), then the writable ones, which may lie inside a kept tree.
    'i=0; for d in $DW_KEEP; do mkdir -p "$d"; mount --move /mnt/k$i "$d"; mount -o remount,bind,ro "$d"; i=$((i+1)); done',
    'i=0; for d in $DW_WRITABLE; do mkdir -p "$d"; mount --move /mnt/$i "$d"; i=$((i+1)); done',
    'umount /mnt',
    'unset DW_WRITABLE DW_HIDE DW_KEEP',
    `setpriv --reuid=${uid} --regid=${uid} --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all -- "$@"`,
  ].join('\n');
  return {
    file: 'unshare',
    args: [
      '--pid',
      '--fork',
      '--kill-child',
      '--mount-proc',
      '--mount',
      '--ipc',
      '--uts',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      setup,
      'dw-sandbox',
      file,
      ...args,
    ],
  };
}

/** The variables the setup shell reads (space-separated: a path with a space is refused). */
export function sandboxSetupEnv(options: SandboxOptions): Record<string, string> {
  const hide = ['/tmp', '/var/tmp', '/dev/shm', ...(options.hide ?? [])];
  const keep = options.keep ?? [];
  const all = [...options.writable, ...hide, ...keep];
  const bad = all.find((p) => /\s/.test(p) || !p.startsWith('/'));
  if (bad) throw new PluginError(`the staging sandbox cannot bind ${JSON.stringify(bad)}: it needs an absolute path without spaces`);
  return { DW_WRITABLE: options.writable.join(' '), DW_HIDE: hide.join(' '), DW_KEEP: keep.join(' ') };
}
