/**
 * HTTP(S) requests to URLs a message names (download_uri, upload_uri, droplet_uri): only
 * `https://`, and only to public addresses. The host name is resolved by our own lookup, which
 * refuses the connection when any address it resolves to is loopback, link-local (the instance
 * metadata service), private, CGNAT, multicast or otherwise not public, so the address checked
 * is the address connected to (no DNS-rebinding window). Redirects are followed by hand, each
 * hop checked the same way.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { type IncomingHttpHeaders, type IncomingMessage, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';

export interface UrlPolicy {
  /** Plain http:// too (tests only). */
  allowHttp: boolean;
  /** Why the request may not connect to `address` (undefined: it may). */
  refuseAddress(address: string): string | undefined;
}

/** Production: https:// to public addresses only. */
export const PUBLIC_ONLY: UrlPolicy = { allowHttp: false, refuseAddress: (a) => nonPublicReason(a) };

/**
 * Test-only (`DROPWARDEN_TEST_ALLOW_PRIVATE_URLS=1`): http:// and any address, for tests that
 * serve archives from 127.0.0.1. Never set in production.
 */
export const ANY_URL: UrlPolicy = { allowHttp: true, refuseAddress: () => undefined };

export function urlPolicyFromEnv(env: NodeJS.ProcessEnv): UrlPolicy {
  return env.DROPWARDEN_TEST_ALLOW_PRIVATE_URLS === '1' ? ANY_URL : PUBLIC_ONLY;
}

/** A URL the policy refuses: permanent, whatever the caller retries. */
export class UrlRefusedError extends Error {
  override name = 'UrlRefusedError';
  readonly code = 'ERR_DROPWARDEN_URL_REFUSED';
}

const RANGES: Array<[string, number, 'ipv4' | 'ipv6', string]> = [
  ['0.0.0.0', 8, 'ipv4', 'a "this network" address'],
  ['10.0.0.0', 8, 'ipv4', 'a private address'],
  ['100.64.0.0', 10, 'ipv4', 'a shared (CGNAT) address'],
  ['127.0.0.0', 8, 'ipv4', 'a loopback address'],
  ['169.254.0.0', 16, 'ipv4', 'a link-local address (the instance metadata service lives there)'],
  ['172.16.0.0', 12, 'ipv4', 'a private address'],
  ['192.0.0.0', 24, 'ipv4', 'a reserved address'],
  ['192.0.2.0', 24, 'ipv4', 'a documentation address'],
  ['192.88.99.0', 24, 'ipv4', 'a reserved address'],
  ['192.168.0.0', 16, 'ipv4', 'a private address'],
  ['198.18.0.0', 15, 'ipv4', 'a benchmarking address'],
  ['198.51.100.0', 24, 'ipv4', 'a documentation address'],
  ['203.0.113.0', 24, 'ipv4', 'a documentation address'],
  ['224.0.0.0', 4, 'ipv4', 'a multicast address'],
  ['240.0.0.0', 4, 'ipv4', 'a reserved address'],
  ['::', 128, 'ipv6', 'the unspecified address'],
  ['::1', 128, 'ipv6', 'a loopback address'],
  ['100::', 64, 'ipv6', 'a discard address'],
  ['2001:db8::', 32, 'ipv6', 'a documentation address'],
  ['fc00::', 7, 'ipv6', 'a private (unique local) address'],
  ['fe80::', 10, 'ipv6', 'a link-local address'],
  ['fec0::', 10, 'ipv6', 'a site-local address'],
  ['ff00::', 8, 'ipv6', 'a multicast address'],
];
const lists = RANGES.map(([net, prefix, family, why]) => {
  const list = new BlockList();
  list.addSubnet(net, prefix, family);
  return { list, family, why };
});

/** Why `address` is not a public one, or undefined when it is. */
export function nonPublicReason(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return 'not an IP address';
  let ip = address;
  if (family === 6) {
    const lower = address.toLowerCase();
    // IPv4-mapped (::ffff:a.b.c.d), and NAT64 (64:ff9b::a.b.c.d): judge the IPv4 address inside.
    const embedded = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower)?.[1] ?? mappedHex(lower);
    if (embedded) return nonPublicReason(embedded);
    if (lower.startsWith('2002:')) return 'a 6to4 address';
  }
  const fam = family === 4 ? 'ipv4' : 'ipv6';
  return lists.find((l) => l.family === fam && l.list.check(ip, fam))?.why;
}

/** ::ffff:7f00:1 and 64:ff9b::7f00:1 (hex forms) → 127.0.0.1. */
function mappedHex(lower: string): string | undefined {
  const m = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (!m) return undefined;
  const [hi, lo] = [parseInt(m[1], 16), parseInt(m[2], 16)];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** The scheme and, for an IP literal, the address (a literal skips the lookup below). */
export function checkUrl(url: URL, policy: UrlPolicy, shown = url.origin): void {
  if (url.protocol !== 'https:' && !(policy.allowHttp && url.protocol === 'http:')) {
    throw new UrlRefusedError(`${shown} is not an https:// URL: only https:// is fetched`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host)) {
    const why = policy.refuseAddress(host);
    if (why) throw new UrlRefusedError(`${shown} is ${why}: only public addresses are fetched`);
  }
}

function guardedLookup(policy: UrlPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      for (const a of addresses) {
        const why = policy.refuseAddress(a.address);
        if (why) return callback(new UrlRefusedError(`${hostname} resolves to ${a.address}, ${why}: only public addresses are fetched`), '', 0);
      }
      if (options.all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      else callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

export interface PublicResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
  /** The URL that answered (after redirects). */
  url: URL;
}

export interface PublicRequest {
  method?: 'GET' | 'PUT';
  headers?: Record<string, string>;
  /** A PUT's body; a PUT's redirect is not followed (the body cannot be sent twice). */
  body?: Readable;
  signal?: AbortSignal;
  policy: UrlPolicy;
  maxRedirects?: number;
  /** For messages: the URL as it may be shown (no signature). */
  shown?: (url: URL) => string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** One request, with GET redirects followed, each hop checked against the policy. */
export async function publicRequest(target: string | URL, req: PublicRequest): Promise<PublicResponse> {
  let url = new URL(target);
  const shown = req.shown ?? ((u: URL) => u.origin);
  for (let hop = 0; ; hop++) {
    checkUrl(url, req.policy, shown(url));
    const res = await once(url, req);
    const location = res.headers.location;
    if ((req.method ?? 'GET') === 'GET' && REDIRECTS.has(res.statusCode ?? 0) && location) {
      res.resume();
      if (hop >= (req.maxRedirects ?? 5)) throw new UrlRefusedError(`${shown(url)} redirected more than ${req.maxRedirects ?? 5} times`);
      url = new URL(location, url);
      continue;
    }
    return { status: res.statusCode ?? 0, headers: res.headers, body: res, url };
  }
}

function once(url: URL, req: PublicRequest): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const r = send(url, { method: req.method ?? 'GET', headers: req.headers, signal: req.signal, lookup: guardedLookup(req.policy) }, resolve);
    r.once('error', reject);
    if (req.body) {
      req.body.once('error', (err) => r.destroy(err));
      req.body.pipe(r);
    } else {
      r.end();
    }
  });
}
