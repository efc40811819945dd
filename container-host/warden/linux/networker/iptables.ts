import { runHost } from '../host-command.ts';
import { WardenError, type NetOutSpec } from '../../server/service.ts';
import { parseCidr, parseIp, formatCidr } from './ipv4.ts';

/** The instance metadata service: never reachable from a container, whatever net_out allows. */
export const METADATA_ADDRESS = '169.254.169.254';
/** The ECS agent's task-credentials endpoint (DNATed to the host's loopback on ECS hosts). */
export const ECS_CREDENTIALS_ADDRESS = '169.254.170.2';
/** Rules at the head of a container's out chain that net_out rules go after (see addContainer). */
const LEADING_OUT_RULES = 3;

/**
 * Names of everything the networker puts on the host, derived from a short prefix so that two
 * wardens (or test runs) on one host never touch each other's rules or interfaces.
 */
export class NetNames {
  readonly prefix: string;
  constructor(prefix: string) {
    if (!/^[a-z][a-z0-9]{0,5}$/.test(prefix)) throw new Error(`network prefix must be 1-6 lowercase letters or digits: ${prefix}`);
    this.prefix = prefix;
  }
  /** Host side of the container's veth pair (15 characters at most). */
  hostIface(index: number): string {
    return `${this.prefix}h${index}`;
  }
  /** The ifb that shapes what the container sends. */
  ifb(index: number): string {
    return `${this.prefix}b${index}`;
  }
  /** Matches every host-side veth of this warden. */
  get hostIfaces(): string {
    return `${this.prefix}h+`;
  }
  /** filter: the container's outbound rules (what net_out allows, then reject). */
  outChain(index: number): string {
    return `${this.prefix}-o-${index}`;
  }
  /** nat: the container's net_in DNATs. */
  inChain(index: number): string {
    return `${this.prefix}-n-${index}`;
  }
  get forward(): string {
    return `${this.prefix}-forward`;
  }
  get input(): string {
    return `${this.prefix}-input`;
  }
  get netIn(): string {
    return `${this.prefix}-netin`;
  }
  get postrouting(): string {
    return `${this.prefix}-postrouting`;
  }
}

type Table = 'filter' | 'nat';
interface Rule {
  table: Table;
  chain: string;
  args: string[];
  insert?: boolean;
}

function iptables(step: string, table: Table, args: string[], allowFailure = false) {
  return runHost(step, ['iptables', '-w', '-t', table, ...args], { allowFailure });
}

/** iptables-restore without flushing anything it does not name: one process for many rules. */
function restore(step: string, script: string) {
  return runHost(step, ['iptables-restore', '-w', '--noflush'], { input: script });
}

/** Quotes an argument for an iptables-restore line. */
function q(arg: string): string {
  return /^[\w./:+,!-]+$/.test(arg) ? arg : `"${arg.replace(/(["\\])/g, '\\$1')}"`;
}

/**
 * The networker's iptables rules (guardian's kawasaki/iptables, warden's net.sh), iptables-nft
 * and legacy alike. Global chains, hooked first into the built-in ones:
 *
 *   filter FORWARD → <p>-forward: a container's outbound goes to its own chain; inbound to a
 *     container is accepted only as a reply or through a net_in DNAT, dropped otherwise. Our
 *     ACCEPTs come before Docker's chains and a FORWARD policy of DROP (ECS hosts).
 *   filter INPUT → <p>-input: what a container sends to the host itself obeys the same chain.
 *   nat PREROUTING and OUTPUT (destination local) → <p>-netin → one chain per container of
 *     DNATs, so a mapped port answers on every host address, 127.0.0.1 included.
 *   nat POSTROUTING → <p>-postrouting: MASQUERADE for containers going out, and for host
 *     connections from 127.0.0.1 (allowed out of lo by route_localnet on the veth).
 *
 * Per container: <p>-o-<i> (filter): replies accepted, the metadata address rejected, the
 * net_out ACCEPTs, then reject; <p>-n-<i> (nat): its net_in DNATs.
 */
export class Iptables {
  readonly names: NetNames;
  readonly pool: string;
  #ready?: Promise<void>;

  constructor(names: NetNames, pool: string) {
    this.names = names;
    this.pool = pool;
  }

  #globalRules(): Rule[] {
    const n = this.names;
    return [
      { table: 'filter', chain: n.forward, args: ['-o', n.hostIfaces, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED,DNAT', '-j', 'ACCEPT'] },
      { table: 'filter', chain: n.forward, args: ['-o', n.hostIfaces, '-j', 'DROP'] },
      { table: 'filter', chain: n.forward, args: ['-i', n.hostIfaces, '-j', 'DROP'] },
      { table: 'filter', chain: n.input, args: ['-i', n.hostIfaces, '-j', 'DROP'] },
      { table: 'nat', chain: n.postrouting, args: ['-s', this.pool, '!', '-d', this.pool, '-j', 'MASQUERADE'] },
      { table: 'nat', chain: n.postrouting, args: ['-s', '127.0.0.0/8', '-o', n.hostIfaces, '-j', 'MASQUERADE'] },
      { table: 'filter', chain: 'FORWARD', args: ['-j', n.forward], insert: true },
      { table: 'filter', chain: 'INPUT', args: ['-j', n.input], insert: true },
      { table: 'nat', chain: 'PREROUTING', args: ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', n.netIn], insert: true },
      { table: 'nat', chain: 'OUTPUT', args: ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', n.netIn], insert: true },
      { table: 'nat', chain: 'POSTROUTING', args: ['-j', n.postrouting], insert: true },
    ];
  }

  #globalChains(): Array<[Table, string]> {
    const n = this.names;
    return [
      ['filter', n.forward],
      ['filter', n.input],
      ['nat', n.netIn],
      ['nat', n.postrouting],
    ];
  }

  /** Creates the global chains and hooks once; idempotent (a restarted warden finds them in place). */
  ensureGlobal(): Promise<void> {
    this.#ready ??= (async () => {
      for (const [table, chain] of this.#globalChains()) {
        const r = await iptables('creating iptables chains', table, ['-N', chain], true);
        if (r.code !== 0 && !/exists/i.test(r.stderr.toString()))
          throw new WardenError('host_failure', `creating iptables chain ${chain} failed: ${r.stderr.toString().trim()}`);
      }
      for (const rule of this.#globalRules()) {
        const present = await iptables('checking iptables rules', rule.table, ['-C', rule.chain, ...rule.args], true);
        if (present.code === 0) continue;
        await iptables('adding iptables rules', rule.table, rule.insert ? ['-I', rule.chain, '1', ...rule.args] : ['-A', rule.chain, ...rule.args]);
      }
    })();
    this.#ready.catch(() => {
      this.#ready = undefined;
    });
    return this.#ready;
  }

  /** Removes the global chains and hooks (uninstall, tests); containers' chains must be gone. */
  async removeGlobal(): Promise<void> {
    for (const rule of this.#globalRules().filter((r) => r.insert)) {
      while ((await iptables('removing iptables rules', rule.table, ['-D', rule.chain, ...rule.args], true)).code === 0);
    }
    for (const [table, chain] of this.#globalChains()) {
      await iptables('removing iptables chains', table, ['-F', chain], true);
      await iptables('removing iptables chains', table, ['-X', chain], true);
    }
    this.#ready = undefined;
  }

  /** The container's chains, hooked into the global ones: outbound denied until net_out. */
  async addContainer(index: number): Promise<void> {
    await this.ensureGlobal();
    const n = this.names;
    const out = n.outChain(index);
    const inc = n.inChain(index);
    const iface = n.hostIface(index);
    await restore(
      "adding the container's iptables chains",
      [
        '*filter',
        `:${out} - [0:0]`,
        `-A ${out} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
        // Matched on the destination the container asked for: on ECS hosts the credentials
        // address is DNATed to the host's loopback before this chain sees the packet.
        `-A ${out} -m conntrack --ctorigdst ${METADATA_ADDRESS}/32 -j REJECT --reject-with icmp-host-prohibited`,
        `-A ${out} -m conntrack --ctorigdst ${ECS_CREDENTIALS_ADDRESS}/32 -j REJECT --reject-with icmp-host-prohibited`,
        `-A ${out} -p tcp -j REJECT --reject-with tcp-reset`,
        `-A ${out} -j REJECT --reject-with icmp-port-unreachable`,
        `-I ${n.forward} 1 -i ${iface} -g ${out}`,
        `-I ${n.input} 1 -i ${iface} -g ${out}`,
        'COMMIT',
        '*nat',
        `:${inc} - [0:0]`,
        `-I ${n.netIn} 1 -j ${inc}`,
        'COMMIT',
        '',
      ].join('\n'),
    );
  }

  /** Removes the container's chains and hooks; tolerant of any of them being gone already. */
  async removeContainer(index: number): Promise<void> {
    const n = this.names;
    const out = n.outChain(index);
    const inc = n.inChain(index);
    const iface = n.hostIface(index);
    const steps: Array<[Table, string[]]> = [
      ['filter', ['-D', n.forward, '-i', iface, '-g', out]],
      ['filter', ['-D', n.input, '-i', iface, '-g', out]],
      ['filter', ['-F', out]],
      ['filter', ['-X', out]],
      ['nat', ['-D', n.netIn, '-j', inc]],
      ['nat', ['-F', inc]],
      ['nat', ['-X', inc]],
    ];
    const script = [
      '*filter',
      ...steps.filter(([t]) => t === 'filter').map(([, a]) => a.map(q).join(' ')),
      'COMMIT',
      '*nat',
      ...steps.filter(([t]) => t === 'nat').map(([, a]) => a.map(q).join(' ')),
      'COMMIT',
      '',
    ].join('\n');
    try {
      await restore("removing the container's iptables chains", script);
    } catch {
      // Something was already gone (a half-made container): remove what is there, one by one.
      for (const [table, args] of steps) await iptables("removing the container's iptables chains", table, args, true);
    }
  }

  async addNetIn(index: number, containerIp: string, hostPort: number, containerPort: number): Promise<void> {
    await iptables('adding a net_in rule', 'nat', [
      '-A',
      this.names.inChain(index),
      '-p',
      'tcp',
      '--dport',
      String(hostPort),
      '-j',
      'DNAT',
      '--to-destination',
      `${containerIp}:${containerPort}`,
    ]);
  }

  async addNetOut(index: number, handle: string, rule: NetOutRule): Promise<void> {
    const chain = this.names.outChain(index);
    // After the leading rules (replies, then the metadata and credentials rejects), which
    // always come first, whatever net_out allows.
    const at = String(LEADING_OUT_RULES + 1);
    await iptables('adding a net_out rule', 'filter', ['-I', chain, at, ...rule.match, '-j', 'ACCEPT']);
    if (rule.log) {
      await iptables('adding a net_out rule', 'filter', [
        '-I',
        chain,
        at,
        ...rule.match,
        '-m',
        'conntrack',
        '--ctstate',
        'NEW,UNTRACKED,INVALID',
        '-j',
        'LOG',
        '--log-prefix',
        `${handle.slice(0, 28)} `,
      ]);
    }
  }
}

/** A validated net_out request as iptables match arguments. */
export interface NetOutRule {
  match: string[];
  log: boolean;
}

/** Validates net_out as the original warden did, with its error messages. */
export function netOutRule(spec: NetOutSpec): NetOutRule {
  if (!spec.network && spec.port === undefined && !spec.portRange) {
    throw new WardenError('bad_request', 'Please specify network, port, and/or port_range.');
  }
  const protocol = spec.protocol ?? 'tcp';
  if (!['tcp', 'udp', 'icmp', 'all'].includes(protocol)) throw new WardenError('bad_request', `Unknown protocol: ${String(protocol)}`);
  const match: string[] = protocol === 'all' ? [] : ['-p', protocol];

  if (spec.network) {
    const range = spec.network.split('-');
    if (range.length === 2) {
      const [from, to] = range.map((r) => parseIp(r));
      if (from === undefined || to === undefined) throw new WardenError('bad_request', `Invalid network: ${spec.network}`);
      if (from > to) throw new WardenError('bad_request', `Invalid network: ${spec.network} (the range ends before it starts)`);
      match.push('-m', 'iprange', '--dst-range', `${range[0].trim()}-${range[1].trim()}`);
    } else {
      const cidr = parseCidr(spec.network);
      if (!cidr) throw new WardenError('bad_request', `Invalid network: ${spec.network}`);
      match.push('-d', formatCidr(cidr));
    }
  }

  const ports = spec.portRange || (spec.port !== undefined ? String(spec.port) : undefined);
  if (ports !== undefined) {
    const m = /^(\d+)(?::(\d+))?$/.exec(ports.trim());
    if (!m) throw new WardenError('bad_request', `Invalid port range: ${ports}`);
    const [min, max] = [Number(m[1]), m[2] === undefined ? undefined : Number(m[2])];
    if (max !== undefined && !(min < max)) throw new WardenError('bad_request', 'Port range maximum must be greater than minimum');
    if (min < 1 || min > 65535 || (max !== undefined && max > 65535)) throw new WardenError('bad_request', `Invalid port range: ${ports}`);
    if (protocol !== 'tcp' && protocol !== 'udp') throw new WardenError('bad_request', `port and port_range need protocol tcp or udp, not ${protocol}`);
    match.push('--dport', max === undefined ? String(min) : `${min}:${max}`);
  }

  if (protocol === 'icmp') {
    const type = spec.icmpType !== undefined && spec.icmpType !== -1 ? spec.icmpType : undefined;
    const code = spec.icmpCode !== undefined && spec.icmpCode !== -1 ? spec.icmpCode : undefined;
    if (type !== undefined) match.push('--icmp-type', code !== undefined ? `${type}/${code}` : String(type));
  }
  return { match, log: spec.log ?? false };
}
