import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { job, skipReason, startWarden, waitFor, type Harness } from './helpers.ts';
import { httpGetScript, iptablesLines, links, removeWardenNetwork, RemoteHost } from './net-helpers.ts';

const PREFIX = `nt${process.pid % 10000}`;
const POOL = '100.98.0.0/24';
const PORTS = { first: 62001, size: 3 };

/**
 * The IPv4 addresses of the interface holding the default route (what clients reach), if any.
 * Not every host address: other suites' containers and remote hosts add and remove theirs
 * while this one runs, and one gone between listing and fetching is not a failure of net_in.
 */
function defaultRouteAddresses(): string[] {
  const dev = /\bdev (\S+)/.exec(execFileSync('ip', ['-4', 'route', 'show', 'default'], { encoding: 'utf8' }))?.[1];
  if (!dev) return [];
  return execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', dev], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /inet (\d+\.\d+\.\d+\.\d+)/.exec(l)?.[1])
    .filter((a): a is string => !!a && !a.startsWith('127.'));
}

/** The packets the filter table's rule `rule` (as iptables-save prints it) has matched. */
function forwardDropPackets(rule: string): number {
  const line = execFileSync('iptables-save', ['-c', '-t', 'filter'], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.endsWith(rule));
  return line ? Number(/^\[(\d+):/.exec(line)![1]) : 0;
}

async function get(url: string): Promise<{ status: number; body: string } | undefined> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return { status: r.status, body: await r.text() };
  } catch {
    return undefined;
  }
}

describe.skipIf(skipReason)('warden linux backend: networking', () => {
  let h: Harness;
  const remote = new RemoteHost('n', 40);

  /**
   * As on a Docker/ECS host, whatever our chains do not accept is dropped: here by DROP rules at
   * the end of FORWARD that match only this suite's interfaces (its containers' and its remote
   * host's), not by the host's FORWARD policy, which other suites running beside this one share.
   */
  const dropsAfterOurs = [
    ['-i', `${PREFIX}+`],
    ['-o', `${PREFIX}+`],
    ['-i', remote.hostIface],
    ['-o', remote.hostIface],
  ].map((m) => [...m, '-j', 'DROP']);
  const removeDrops = () => {
    for (const rule of dropsAfterOurs) {
      try {
        while (true) execFileSync('iptables', ['-w', '-D', 'FORWARD', ...rule], { stdio: 'ignore' });
      } catch {
        /* none left */
      }
    }
  };

  beforeAll(async () => {
    removeDrops();
    for (const rule of dropsAfterOurs) execFileSync('iptables', ['-w', '-A', 'FORWARD', ...rule]);
    h = await startWarden('net', { network: { pool: POOL, prefix: PREFIX, portPool: PORTS, mtu: 1500 } });
    remote.setUp();
  });
  afterAll(async () => {
    removeDrops();
    remote.tearDown();
    try {
      await h?.close();
    } finally {
      await removeWardenNetwork(PREFIX, POOL);
    }
    expect(iptablesLines(PREFIX)).toEqual([]);
    expect(links(PREFIX)).toEqual([]);
  });

  it('gives each container a /30 of the pool and reports it; create with network picks it', async () => {
    const a = await h.warden.create({ bindMounts: [] });
    const infoA = await h.warden.info(a.handle);
    expect(infoA.hostIp).toMatch(/^100\.98\.0\.\d+$/);
    expect(infoA.containerIp).toBe(infoA.hostIp!.replace(/\d+$/, (d) => String(Number(d) + 1)));
    const r = await h.warden.run(job(a.handle, 'ip -4 -o addr show eth0; ip route'));
    expect(r.stdout.toString()).toContain(`${infoA.containerIp}/30`);
    expect(r.stdout.toString()).toContain(`default via ${infoA.hostIp}`);

    const b = await h.warden.create({ bindMounts: [], network: '100.98.0.200' });
    expect((await h.warden.info(b.handle)).containerIp).toBe('100.98.0.202');
    await expect(h.warden.create({ bindMounts: [], network: '100.98.0.201' })).rejects.toThrow('Could not acquire network');
    await expect(h.warden.create({ bindMounts: [], network: '1.1.1.1' })).rejects.toThrow('Could not acquire network');
    await h.warden.destroy(a.handle);
    await h.warden.destroy(b.handle);
  });

  it("net_in answers on 127.0.0.1, on the host's own addresses and from a remote host; the pool runs out", async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    await h.warden.run(job(handle, 'mkdir -p /tmp/www && echo hello-from-container > /tmp/www/index.html'));
    await h.warden.spawn(job(handle, 'cd /tmp/www && exec python3 -m http.server 8080'));
    const { hostPort, containerPort } = await h.warden.netIn({ handle, containerPort: 8080 });
    expect(containerPort).toBe(8080);
    expect(hostPort).toBeGreaterThanOrEqual(PORTS.first);

    await waitFor(async () => (await get(`http://127.0.0.1:${hostPort}/`))?.body === 'hello-from-container\n', 10_000);
    // Host addresses on three interfaces that stay for the whole test: the default route's,
    // this suite's link to its remote host, and the container's own host side.
    const addresses = [...defaultRouteAddresses(), remote.hostIp, (await h.warden.info(handle)).hostIp!];
    for (const addr of addresses) {
      expect((await get(`http://${addr}:${hostPort}/`))?.body, `via ${addr}`).toBe('hello-from-container\n');
    }
    const fromRemote = remote.exec([
      'python3',
      '-c',
      `import urllib.request; print(urllib.request.urlopen('http://${remote.hostIp}:${hostPort}/', timeout=3).read().decode())`,
    ]);
    expect(fromRemote).toContain('hello-from-container');

    // A port nobody mapped does not reach the container, even straight to its address: from the
    // remote host, a connection to the container's own address is dropped, by warden's chain
    // (its counter moves), not only by the drops after it.
    const { containerIp } = await h.warden.info(handle);
    const dropped = () => forwardDropPackets(`-A ${PREFIX}-forward -o ${PREFIX}h+ -j DROP`);
    const droppedBefore = dropped();
    expect(() => remote.exec(['python3', '-c', `import socket; socket.create_connection(('${containerIp}', 8080), timeout=2)`])).toThrow(/timed out/);
    expect(dropped()).toBeGreaterThan(droppedBefore);
    expect(await get(`http://127.0.0.1:${PORTS.first + 1}/`)).toBeUndefined();
    expect((await h.warden.netIn({ handle, hostPort: PORTS.first + 2, containerPort: 8081 })).hostPort).toBe(PORTS.first + 2);
    await h.warden.netIn({ handle });
    await expect(h.warden.netIn({ handle })).rejects.toThrow('no port available');
    await h.warden.destroy(handle);
  });

  it('denies outbound by default, allows what net_out names, never the metadata address', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    // Node, not python's http.server: that one looks its own address up in DNS first.
    remote.background([process.execPath, '-e', `require('http').createServer((q, s) => s.end('remote')).listen(9000, '${remote.remoteIp}')`]);
    await waitFor(async () => {
      try {
        remote.exec(['python3', '-c', `import urllib.request; urllib.request.urlopen('http://${remote.remoteIp}:9000/', timeout=1)`]);
        return true;
      } catch {
        return false;
      }
    }, 10_000);
    const url = `http://${remote.remoteIp}:9000/`;
    const denied = await h.warden.run(job(handle, httpGetScript(url)));
    expect(denied.exitStatus).not.toBe(0);
    const hostItself = await h.warden.run(job(handle, httpGetScript(`http://${(await h.warden.info(handle)).hostIp}:22/`, 1)));
    expect(hostItself.exitStatus).not.toBe(0);

    await h.warden.netOut({ handle, network: `${remote.remoteIp}-${remote.remoteIp}`, portRange: '8999:9001', protocol: 'tcp' });
    const allowed = await h.warden.run(job(handle, httpGetScript(url)));
    expect(allowed.stderr.toString()).toBe('');
    expect(allowed.stdout.toString().trim()).toBe('200');

    // Even "everything" leaves the metadata and ECS credentials rejects first in the container's
    // chain, matched on the address asked for (ECS DNATs the credentials address to the host).
    await h.warden.netOut({ handle, network: '0.0.0.0/0', protocol: 'all', log: true });
    const chain = iptablesLines(`-A ${PREFIX}-o-`);
    const firstAllow = chain.findIndex((l) => (l.includes('-j ACCEPT') || l.includes('-j LOG')) && !l.includes('ESTABLISHED'));
    for (const address of ['169.254.169.254', '169.254.170.2']) {
      const reject = chain.findIndex((l) => new RegExp(`--ctorigdst ${address.replaceAll('.', '\\.')}(/32)? `).test(l) && l.includes('-j REJECT'));
      expect(reject, address).toBeGreaterThanOrEqual(0);
      expect(reject, address).toBeLessThan(firstAllow);
    }
    await h.warden.destroy(handle);
    expect(iptablesLines(`${PREFIX}-o-`)).toEqual([]);
    expect(iptablesLines(`${PREFIX}-n-`)).toEqual([]);
  });

  it('keeps IPv6 off the veth pair: a host service on [::] is not reachable from a container', async () => {
    const server = createTcpServer((socket) => socket.end('host-v6\n'));
    await new Promise<void>((r) => server.listen({ host: '::', port: 0 }, r));
    const port = (server.address() as { port: number }).port;
    const { handle } = await h.warden.create({ bindMounts: [] });
    try {
      const { hostIp } = await h.warden.info(handle);
      const hostIface = /^\d+:\s+(\S+)\s+inet /m.exec(execFileSync('ip', ['-o', '-4', 'addr', 'show', 'to', hostIp!], { encoding: 'utf8' }))?.[1];
      expect(hostIface, `the host side of ${hostIp}`).toMatch(new RegExp(`^${PREFIX}`));
      expect(execFileSync('ip', ['-o', '-6', 'addr', 'show', 'dev', hostIface!], { encoding: 'utf8' }).trim()).toBe('');
      const inside = await h.warden.run(
        job(handle, 'cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6; ip -o -6 addr show dev eth0; ip -o -6 addr show dev lo | grep -c "::1/128"'),
      );
      expect(inside.stdout.toString()).toBe('1\n1\n');
      // Every link-local address the host has, tried over eth0 from inside: none may answer.
      const hostLinkLocal = execFileSync('ip', ['-o', '-6', 'addr', 'show', 'scope', 'link'], { encoding: 'utf8' })
        .split('\n')
        .map((l) => /inet6 (fe80::[0-9a-f:]+)\//.exec(l)?.[1])
        .filter((a): a is string => !!a);
      const targets = [...new Set([...hostLinkLocal, 'fe80::1'])];
      const probe = await h.warden.run(
        job(
          handle,
          `python3 - <<'PY'
import socket
for addr in ${JSON.stringify(targets)}:
    try:
        with socket.create_connection((addr + '%eth0', ${port}), timeout=2) as s:
            print('reached', addr, s.recv(64))
    except OSError as e:
        print('refused', addr, type(e).__name__)
PY`,
        ),
      );
      const lines = probe.stdout.toString().trim().split('\n');
      expect(lines).toHaveLength(targets.length);
      expect(
        lines.filter((l) => !l.startsWith('refused ')),
        probe.stderr.toString(),
      ).toEqual([]);
    } finally {
      await h.warden.destroy(handle);
      server.close();
    }
  });

  it('validates net_out with the original messages', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    await expect(h.warden.netOut({ handle })).rejects.toThrow('Please specify network, port, and/or port_range.');
    await expect(h.warden.netOut({ handle, portRange: '2002:2000' })).rejects.toThrow('Port range maximum must be greater than minimum');
    await expect(h.warden.netOut({ handle, network: '10.0.0.300' })).rejects.toThrow('Invalid network');
    await expect(h.warden.netOut({ handle, network: '10.0.0.9-10.0.0.1' })).rejects.toThrow('Invalid network');
    await expect(h.warden.netOut({ handle, port: 80, protocol: 'icmp' })).rejects.toThrow('protocol tcp or udp');
    await h.warden.netOut({ handle, network: '4.2.2.2' });
    await h.warden.netOut({ handle, port: 1234 });
    await h.warden.netOut({ handle, network: '10.1.0.0/16', port: 53, protocol: 'udp' });
    await h.warden.netOut({ handle, network: '10.2.0.0/16', protocol: 'icmp', icmpType: 8, icmpCode: 0 });
    await h.warden.destroy(handle);
  });

  it('limit_bandwidth puts a transfer through a tbf of the rate, both ways; info reports it', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    const rate = 2 * 1024 * 1024;
    expect(await h.warden.limitBandwidth(handle, rate, 64 * 1024)).toEqual({ rate, burst: 64 * 1024 });
    expect((await h.warden.info(handle)).bandwidthStat).toEqual({ inRate: rate, inBurst: 65536, outRate: rate, outBurst: 65536 });
    const size = 6 * 1024 * 1024;
    await h.warden.run(job(handle, `mkdir -p /tmp/www && head -c ${size} /dev/zero > /tmp/www/blob`));
    await h.warden.spawn(job(handle, 'cd /tmp/www && exec python3 -m http.server 8080'));
    const { hostPort } = await h.warden.netIn({ handle, containerPort: 8080 });
    await waitFor(async () => (await get(`http://127.0.0.1:${hostPort}/`)) !== undefined, 10_000);

    // The shaping is the kernel's tbf: each direction's qdisc has the rate, and a transfer far
    // over the burst went through it and was held back by it (overlimits), whatever the box's load.
    const { hostIp: shapedHostIp } = await h.warden.info(handle);
    const shapedIndex = (Number(shapedHostIp!.split('.')[3]) - 1) / 4;
    const tbf = (dev: string) => {
      const out = execFileSync('tc', ['-s', 'qdisc', 'show', 'dev', dev], { encoding: 'utf8' });
      const m = /qdisc tbf .*? rate (\S+) burst (\S+)[^\n]*\n\s*Sent (\d+) bytes \d+ pkt \(dropped \d+, overlimits (\d+)/.exec(out);
      expect(m, `${dev}: ${out}`).not.toBeNull();
      return { rate: m![1], burst: m![2], sent: Number(m![3]), overlimits: Number(m![4]) };
    };
    const egress = `${PREFIX}b${shapedIndex}`;
    const ingress = `${PREFIX}h${shapedIndex}`;
    expect(tbf(egress)).toMatchObject({ rate: '16777Kbit', burst: '64Kb' });
    expect(tbf(ingress)).toMatchObject({ rate: '16777Kbit', burst: '64Kb' });

    // What the container sends (its egress: the ifb).
    const egressBefore = tbf(egress);
    const r = await fetch(`http://127.0.0.1:${hostPort}/blob`);
    expect((await r.arrayBuffer()).byteLength).toBe(size);
    const egressAfter = tbf(egress);
    expect(egressAfter.sent - egressBefore.sent).toBeGreaterThanOrEqual(size);
    expect(egressAfter.overlimits).toBeGreaterThan(egressBefore.overlimits);

    // What the container receives (the host side's tbf): a download from a server on the host.
    const blob = Buffer.alloc(size);
    const server: Server = createServer((_req, res) => res.end(blob));
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      await h.warden.netOut({ handle, network: shapedHostIp, port });
      const ingressBefore = tbf(ingress);
      const dl = await h.warden.run(
        job(handle, `python3 -c "import urllib.request; print(len(urllib.request.urlopen('http://${shapedHostIp}:${port}/', timeout=30).read()))"`),
      );
      expect(dl.stderr.toString()).toBe('');
      expect(Number(dl.stdout.toString().trim())).toBe(size);
      const ingressAfter = tbf(ingress);
      expect(ingressAfter.sent - ingressBefore.sent).toBeGreaterThanOrEqual(size);
      expect(ingressAfter.overlimits).toBeGreaterThan(ingressBefore.overlimits);
    } finally {
      server.close();
    }
    const { hostIp } = await h.warden.info(handle);
    await h.warden.destroy(handle);
    const index = (Number(hostIp!.split('.')[3]) - 1) / 4;
    expect(links(PREFIX).filter((l) => l === `${PREFIX}h${index}` || l === `${PREFIX}b${index}`)).toEqual([]);
  }, 60_000);
});
