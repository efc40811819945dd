import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { Iptables, NetNames } from '../../../container-host/warden/linux/networker/iptables.ts';

/** Removes a test warden's global chains and hooks (its containers' chains must be gone). */
export async function removeWardenNetwork(prefix: string, pool: string): Promise<void> {
  await new Iptables(new NetNames(prefix), pool).removeGlobal();
}

/**
 * Closes a test warden with networking on, then removes its global chains even when closing
 * failed; resolves with what is left of its rules and interfaces (both should be empty).
 */
export async function closeNetworked(close: () => Promise<void>, prefix: string, pool: string): Promise<{ rules: string[]; links: string[] }> {
  try {
    await close();
  } finally {
    await removeWardenNetwork(prefix, pool);
  }
  return { rules: iptablesLines(prefix), links: links(prefix) };
}

/** iptables-save lines of both tables that mention `needle`. */
export function iptablesLines(needle: string): string[] {
  return ['filter', 'nat'].flatMap((t) => execFileSync('iptables-save', ['-t', t], { encoding: 'utf8' }).split('\n')).filter((l) => l.includes(needle));
}

/** Host interfaces whose name starts with `prefix`. */
export function links(prefix: string): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1])
    .filter((n): n is string => !!n && n.startsWith(prefix));
}

export function loopDevicesMentioning(needle: string): string[] {
  return execFileSync('losetup', ['-a'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(needle));
}

/**
 * Another network namespace acting as a remote host: a veth pair to the host with a /30 of the
 * benchmarking range (198.18.0.0/15, never routed), its default route through the host.
 */
export class RemoteHost {
  readonly name: string;
  readonly hostIface: string;
  readonly hostIp: string;
  readonly remoteIp: string;
  readonly #children: ChildProcess[] = [];

  constructor(tag: string, octet: number) {
    this.name = `dwtest-${tag}-${process.pid}`;
    this.hostIface = `dwr${tag}${process.pid % 10000}`.slice(0, 15);
    this.hostIp = `198.18.${octet}.1`;
    this.remoteIp = `198.18.${octet}.2`;
  }

  setUp(): void {
    this.tearDown();
    execFileSync('ip', ['netns', 'add', this.name]);
    execFileSync('ip', ['link', 'add', this.hostIface, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.name]);
    execFileSync('ip', ['addr', 'add', `${this.hostIp}/30`, 'dev', this.hostIface]);
    execFileSync('ip', ['link', 'set', this.hostIface, 'up']);
    this.exec(['ip', 'addr', 'add', `${this.remoteIp}/30`, 'dev', 'eth0']);
    this.exec(['ip', 'link', 'set', 'eth0', 'up']);
    this.exec(['ip', 'link', 'set', 'lo', 'up']);
    this.exec(['ip', 'route', 'add', 'default', 'via', this.hostIp]);
  }

  exec(argv: string[], timeoutMs = 10_000): string {
    return execFileSync('ip', ['netns', 'exec', this.name, ...argv], { encoding: 'utf8', timeout: timeoutMs });
  }

  /** A background process in the remote namespace, killed by tearDown. */
  background(argv: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, ...argv], { stdio: 'ignore' });
    this.#children.push(child);
    return child;
  }

  tearDown(): void {
    for (const c of this.#children.splice(0)) c.kill('SIGKILL');
    // Whatever still runs in it (a wrapper's child) would keep the namespace and its veth alive.
    try {
      for (const pid of execFileSync('ip', ['netns', 'pids', this.name], { encoding: 'utf8' }).split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* not there */
    }
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      /* not there */
    }
    try {
      execFileSync('ip', ['link', 'del', this.hostIface], { stdio: 'ignore' });
    } catch {
      /* gone with the netns */
    }
  }
}

/** Python's http.client from inside a container: prints the status, or exits 1. */
export function httpGetScript(url: string, timeoutS = 3): string {
  return `python3 -c "import urllib.request,sys; print(urllib.request.urlopen('${url}', timeout=${timeoutS}).status)"`;
}
