import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { runHost } from '../host-command.ts';

/** The container side of the pair is always eth0; the host side is named by the networker. */
export const CONTAINER_IFACE = 'eth0';

export interface VethSpec {
  hostIface: string;
  /** The container's init: its network namespace is /proc/<initPid>/ns/net. */
  initPid: number;
  hostIp: string;
  containerIp: string;
  mtu: number;
}

/** Where this kernel has IPv6 at all (a kernel booted with ipv6.disable=1 has no such tree). */
const HAS_IPV6 = existsSync('/proc/sys/net/ipv6');

/**
 * Puts a veth pair between the host and the container's network namespace (which its init
 * holds; nothing is named under /var/run/netns): the host side gets the /30's first address,
 * eth0 inside the second and a default route through the host side. Two `ip -batch` runs.
 *
 * Container networking is IPv4 only, and the firewall (iptables) is too: IPv6 is switched off
 * on both ends before either link comes up, so neither gets a link-local address and no IPv6
 * packet crosses the pair (a host service bound on `[::]` is not reachable from a container,
 * whatever net_out allows). The container's loopback keeps `::1`, so apps that try `localhost`
 * over IPv6 first still reach themselves; interfaces made later in the netns start with IPv6 off.
 */
export async function attachVeth(spec: VethSpec): Promise<void> {
  const { hostIface: h, initPid, hostIp, containerIp, mtu } = spec;
  await runHost("creating the container's veth pair", [
    'ip',
    'link',
    'add',
    h,
    'mtu',
    String(mtu),
    'type',
    'veth',
    'peer',
    'name',
    CONTAINER_IFACE,
    'mtu',
    String(mtu),
    'netns',
    String(initPid),
  ]);
  if (HAS_IPV6) {
    await writeFile(`/proc/sys/net/ipv6/conf/${h}/disable_ipv6`, '1');
    // /proc/sys/net is the reading process's netns: sysctl runs inside the container's.
    await runHost('switching IPv6 off in the container', [
      'nsenter',
      `--net=/proc/${initPid}/ns/net`,
      'sysctl',
      '-q',
      '-w',
      'net.ipv6.conf.default.disable_ipv6=1',
      `net.ipv6.conf.${CONTAINER_IFACE}.disable_ipv6=1`,
    ]);
  }
  await runHost('configuring the host side of the veth pair', ['ip', '-batch', '-'], {
    input: [`addr add ${hostIp}/30 dev ${h}`, `link set ${h} up`, ''].join('\n'),
  });
  // Lets 127.0.0.1 DNATed to the container leave through this interface (then MASQUERADEd).
  await writeFile(`/proc/sys/net/ipv4/conf/${h}/route_localnet`, '1');
  await runHost("configuring the container's network", ['nsenter', `--net=/proc/${initPid}/ns/net`, 'ip', '-batch', '-'], {
    input: [`addr add ${containerIp}/30 dev ${CONTAINER_IFACE}`, `link set ${CONTAINER_IFACE} up`, `route add default via ${hostIp}`, ''].join('\n'),
  });
}

/** Deletes an interface if it is still there (a veth goes by itself with the container's netns). */
export async function deleteLink(name: string): Promise<void> {
  await runHost('deleting a network interface', ['ip', 'link', 'del', name], { allowFailure: true });
}
