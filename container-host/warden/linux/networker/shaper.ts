import { runHost } from '../host-command.ts';

export interface Bandwidth {
  rate: number;
  burst: number;
}

/**
 * limit_bandwidth with tc (warden's net_rate.sh): a token bucket (tbf) on the host side of the
 * veth shapes what the container receives; what it sends enters the host side as ingress,
 * which is redirected to an ifb whose own tbf shapes it. `rate` is in bytes per second.
 */
export class Shaper {
  /** tbf drops a packet larger than its bucket: the bucket holds at least a few full frames. */
  static effectiveBurst(b: Bandwidth, mtu: number): number {
    return Math.max(b.burst, 4 * (mtu + 64), Math.ceil(b.rate / 250));
  }

  async apply(hostIface: string, ifb: string, b: Bandwidth, mtu: number, first: boolean): Promise<void> {
    const tbf = `tbf rate ${b.rate * 8}bit burst ${Shaper.effectiveBurst(b, mtu)} latency 25ms`;
    if (first) {
      await runHost('creating the ifb for limit_bandwidth', ['ip', '-batch', '-'], {
        input: `link add ${ifb} mtu ${mtu} type ifb\nlink set ${ifb} up\n`,
      });
    }
    await runHost('limit_bandwidth (tc)', ['tc', '-batch', '-'], {
      input: [
        `qdisc replace dev ${hostIface} root ${tbf}`,
        `qdisc replace dev ${ifb} root ${tbf}`,
        ...(first
          ? [
              `qdisc add dev ${hostIface} handle ffff: ingress`,
              `filter add dev ${hostIface} parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ${ifb}`,
            ]
          : []),
        '',
      ].join('\n'),
    });
  }
}
