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

/**
 * Puts a veth pair between the host and the container's network namespace (which its init
 * holds; nothing is named under /var/run/netns): the host side gets the /30's first address,
 * eth0 inside the second and a default route through the host side. Two `ip -batch` runs.
 */
export async function attachVeth(spec: VethSpec): Promise<void> {
  const { hostIface: h, initPid, hostIp, containerIp, mtu } = spec;
  await runHost('creating the container\'s veth pair', ['ip', '-batch', '-'], {
    input: [
      `link add ${h} mtu ${mtu} type veth peer name ${CONTAINER_IFACE} mtu ${mtu} netns ${initPid}`,
      `addr add ${hostIp}/30 dev ${h}`,
      `link set ${h} up`,
      '',
    ].join('\n'),
  });
  // Lets 127.0.0.1 DNATed to the container leave through this interface (then MASQUERADEd).
  await writeFile(`/proc/sys/net/ipv4/conf/${h}/route_localnet`, '1');
  await runHost('configuring the container\'s network', ['nsenter', `--net=/proc/${initPid}/ns/net`, 'ip', '-batch', '-'], {
    input: [
      `addr add ${containerIp}/30 dev ${CONTAINER_IFACE}`,
      `link set ${CONTAINER_IFACE} up`,
      `route add default via ${hostIp}`,
      '',
    ].join('\n'),
  });
}

/** Deletes an interface if it is still there (a veth goes by itself with the container's netns). */
export async function deleteLink(name: string): Promise<void> {
  await runHost('deleting a network interface', ['ip', 'link', 'del', name], { allowFailure: true });
}
