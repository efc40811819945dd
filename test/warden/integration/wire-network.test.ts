/**
 * net_out and limit_bandwidth over the real warden wire (DESIGN §5, §10): a `dropwarden
 * wardend` child process with networking on, driven over its unix socket by the real client.
 * wire.test.ts runs wardend with networking off; test/warden/linux/network.test.ts calls the
 * backend directly. Here the requests travel as frames: net_out opens exactly what it names,
 * the refusals keep their original messages, and limit_bandwidth's answer, info's
 * bandwidth_stat and the tc qdiscs on the host agree.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WardenClient } from '../../../container-host/warden/client/client.ts';
import { WardenResponseError } from '../../../container-host/warden/client/errors.ts';
import { skipReason } from '../linux/helpers.ts';
import { closeNetworked, httpGetScript, iptablesLines, links } from '../linux/net-helpers.ts';
import { WardendProcess } from './wardend.ts';

const PREFIX = `wn${process.pid % 10000}`;
const POOL = '100.100.2.0/24';
const TCP = 0;
const ALL = 3;

describe.skipIf(skipReason)('wardend over the wire, networking on', () => {
  let d: WardendProcess;
  let c: WardenClient;
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    d = new WardendProcess('wirenet', { network: { pool: POOL, prefix: PREFIX, portPool: { first: 62111, size: 10 }, mtu: 1500 } });
    await d.start();
    c = await d.client();
    // A service on the host, on every address (the container reaches it on its host_ip).
    server = createServer((_req, res) => res.end('host'));
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    server?.close();
    expect(await closeNetworked(async () => d?.cleanup(), PREFIX, POOL)).toEqual({ rules: [], links: [] });
  });

  const fetchFrom = async (handle: Buffer, url: string) => {
    const r = await c.call('Run', { handle, script: httpGetScript(url, 2) });
    return { exit: r.exit_status, out: r.stdout?.toString().trim() };
  };

  it('net_out: outbound is denied until a rule names it, and a rule opens only what it names', async () => {
    const { handle } = await c.call('Create', { grace_time: 60 });
    const info = await c.call('Info', { handle });
    expect(info.host_ip).toMatch(/^100\.100\.2\.\d+$/);
    const url = `http://${info.host_ip}:${port}/`;
    expect((await fetchFrom(handle, url)).exit).not.toBe(0);

    // Another port of the same address: still closed.
    expect(await c.call('NetOut', { handle, network: info.host_ip, port: port + 1, protocol: TCP })).toEqual({});
    expect((await fetchFrom(handle, url)).exit).not.toBe(0);

    expect(await c.call('NetOut', { handle, network: info.host_ip, port_range: `${port - 1}:${port}`, protocol: TCP })).toEqual({});
    expect(await fetchFrom(handle, url)).toEqual({ exit: 0, out: '200' });
    const chain = iptablesLines(`-A ${PREFIX}-o-`);
    expect(chain.some((l) => l.includes(`-d ${info.host_ip}/32`) && l.includes(`--dport ${port - 1}:${port}`) && l.includes('-j ACCEPT'))).toBe(true);
    await c.call('Destroy', { handle });
    expect(iptablesLines(`${PREFIX}-o-`)).toEqual([]);
  });

  it('net_out: the original refusals, as error frames, and the connection keeps serving', async () => {
    const { handle } = await c.call('Create', { grace_time: 60 });
    const refused = (req: Omit<Parameters<WardenClient['call']>[1] & object, 'handle'>) =>
      c.call('NetOut', { handle, ...req } as never).then(
        () => 'ok',
        (e: Error) => {
          expect(e).toBeInstanceOf(WardenResponseError);
          expect((e as WardenResponseError).code).toBe('bad_request');
          return e.message;
        },
      );
    expect(await refused({})).toBe('Please specify network, port, and/or port_range.');
    expect(await refused({ port_range: '2002:2000' })).toBe('Port range maximum must be greater than minimum');
    expect(await refused({ network: '10.0.0.300' })).toMatch(/Invalid network/);
    expect(await refused({ network: '0.0.0.0/0', protocol: ALL })).toBe('ok');
    expect(await c.call('Ping', {})).toEqual({});
    await c.call('Destroy', { handle });
  });

  it("limit_bandwidth: the answer, info's bandwidth_stat and the qdiscs on both directions agree; destroy removes the ifb", async () => {
    const { handle } = await c.call('Create', { grace_time: 60 });
    const rate = 2 * 1024 * 1024;
    expect(await c.call('LimitBandwidth', { handle, rate, burst: 64 * 1024 })).toEqual({ rate, burst: 64 * 1024 });
    const info = await c.call('Info', { handle });
    expect(info.bandwidth_stat).toEqual({ in_rate: rate, in_burst: 64 * 1024, out_rate: rate, out_burst: 64 * 1024 });
    const index = (Number(info.host_ip!.split('.')[3]) - 1) / 4;
    const tbf = (dev: string) =>
      (
        JSON.parse(execFileSync('tc', ['-j', 'qdisc', 'show', 'dev', dev], { encoding: 'utf8' })) as Array<{ kind: string; root?: boolean; options?: { rate?: number } }>
      ).find((q) => q.kind === 'tbf' && q.root);
    // What the container receives (the host side of its veth) and what it sends (the ifb).
    expect(tbf(`${PREFIX}h${index}`)?.options?.rate).toBe(rate);
    expect(tbf(`${PREFIX}b${index}`)?.options?.rate).toBe(rate);
    // Shaped, traffic still flows.
    await c.call('NetOut', { handle, network: info.host_ip, port, protocol: TCP });
    expect(await fetchFrom(handle, `http://${info.host_ip}:${port}/`)).toEqual({ exit: 0, out: '200' });
    // A new limit replaces the old one.
    expect(await c.call('LimitBandwidth', { handle, rate: rate / 2, burst: 32 * 1024 })).toEqual({ rate: rate / 2, burst: 32 * 1024 });
    expect(tbf(`${PREFIX}b${index}`)?.options?.rate).toBe(rate / 2);
    await c.call('Destroy', { handle });
    expect(links(PREFIX).filter((l) => l === `${PREFIX}h${index}` || l === `${PREFIX}b${index}`)).toEqual([]);
  });
});
