/**
 * The archive is unpacked while it downloads: the tail (central directory) first, then the
 * body from the start. These drive startDownload + unpack against a real HTTP server that
 * honours or ignores ranges, and that can cut a transfer short.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unpackLimitsFromEnv } from '../../functions/stager/config.ts';
import { PhaseError, RetryableError } from '../../functions/stager/errors.ts';
import { startDownload } from '../../functions/stager/phases/download.ts';
import { ANY_URL } from '../../lib/net/public-http.ts';
import { unpack } from '../../functions/stager/phases/unpack.ts';
import { type Tree, zipTree } from '../support/zip.ts';

const work = mkdtempSync(join(tmpdir(), 'dropwarden-download-'));
let server: Server;
let base: string;
const archives = new Map<string, Buffer>();
/** Requests seen, as "path range". */
const seen: string[] = [];
let cutAfter: number | undefined;

const noise = (bytes: number, seed: number) => createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(bytes));

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const body = archives.get(url.pathname);
    seen.push(`${url.pathname} ${req.headers.range ?? ''}`);
    if (!body) return void res.writeHead(404).end();
    // If-Match compares strongly (RFC 9110 §13.1.1): a weak ETag never matches.
    if (url.searchParams.has('weak-etag')) {
      if (req.headers['if-match']) return void res.writeHead(412).end();
      res.setHeader('etag', 'W/"v1"');
    }
    let [start, end] = [0, body.length - 1];
    const ignoreRange = url.searchParams.has('no-ranges') || (url.searchParams.has('no-front-range') && req.headers.range?.startsWith('bytes=0-'));
    const m = ignoreRange ? null : /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (m) {
      if (m[1] === '') start = Math.max(0, body.length - Number(m[2]));
      else [start, end] = [Number(m[1]), m[2] ? Number(m[2]) : end];
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${body.length}`, 'content-length': end - start + 1 });
    } else {
      res.writeHead(200, { 'content-length': body.length });
    }
    const part = body.subarray(start, end + 1);
    if (cutAfter !== undefined && start === 0) {
      res.write(part.subarray(0, cutAfter));
      return void setTimeout(() => res.destroy(), 20);
    }
    res.end(part);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => {
  server.close();
  rmSync(work, { recursive: true, force: true });
});

const LONG = 'm'.repeat(200);
/** An app whose central directory (5 000 names of ~220 bytes: ~1.3 MB) and data both outgrow the 1 MiB tail. */
function bigApp(): Tree {
  const tree: Tree = {};
  for (let i = 0; i < 5000; i++) tree[`lib/${LONG}/file-${i}.js`] = `module.exports = ${i};\n`.repeat(20);
  tree['assets/big.bin'] = noise(3 * 1024 * 1024, 1); // > 1 MiB: streamed, not read whole
  tree['assets/medium.bin'] = noise(600 * 1024, 2);
  return tree;
}
let bigZip: Promise<Buffer> | undefined;
const bigAppZip = () => (bigZip ??= zipTree(bigApp()));

let n = 0;
async function stage(path: string) {
  const dir = join(work, `run-${n++}`);
  mkdirSync(join(dir, 'app'), { recursive: true });
  const signal = new AbortController().signal;
  const download = await startDownload({
    uri: `${base}${path}`,
    dest: join(dir, 'app.zip'),
    s3: new S3Client({ region: 'us-east-1' }), // not used for https URIs
    urls: ANY_URL, // the test server is http://127.0.0.1 (test/stager/uri-places.test.ts covers the production policy)
    maxBytes: 1 << 30,
    signal,
  });
  try {
    const [got, stats] = await Promise.all([download.done, unpack({ archive: download.archive, destDir: join(dir, 'app'), limits: unpackLimitsFromEnv({}), signal })]);
    return { got, stats, dir: join(dir, 'app') };
  } finally {
    await download.done.catch(() => {});
    await download.close();
  }
}

const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('download while unpacking', () => {
  it('fetches the tail first, then the rest from the start, and unpacks every entry intact', async () => {
    const tree = bigApp();
    const zip = await bigAppZip();
    expect(zip.length).toBeGreaterThan(2 * 1024 * 1024);
    archives.set('/big.zip', zip);
    seen.length = 0;
    const { got, stats, dir } = await stage('/big.zip');
    expect(got.bytes).toBe(zip.length);
    expect(stats.files).toBe(5002);
    expect(seen).toEqual(['/big.zip bytes=-1048576', `/big.zip bytes=0-${zip.length - 1048576 - 1}`]);
    expect(digest(readFileSync(join(dir, 'assets/big.bin')))).toBe(digest(tree['assets/big.bin'] as Buffer));
    expect(readFileSync(join(dir, `lib/${LONG}/file-4999.js`), 'utf8')).toBe(tree[`lib/${LONG}/file-4999.js`]);
  });

  it('works with one plain GET when the server ignores ranges, and with an archive smaller than the tail', async () => {
    archives.set('/plain.zip', await bigAppZip());
    const plain = await stage('/plain.zip?no-ranges');
    expect(plain.stats.files).toBe(5002);
    archives.set('/small.zip', await zipTree({ 'app.py': 'print(1)\n', 'lib/a.txt': 'a\n' }));
    seen.length = 0;
    const small = await stage('/small.zip');
    expect(readdirSync(small.dir).sort()).toEqual(['app.py', 'lib']);
    expect(seen).toEqual(['/small.zip bytes=-1048576']);
  });

  it('takes a whole object where it asked for the front (a server that honours only some ranges)', async () => {
    archives.set('/half.zip', await bigAppZip());
    const { got, stats } = await stage('/half.zip?no-front-range');
    expect(stats.files).toBe(5002);
    expect(got.bytes).toBeGreaterThan((await bigAppZip()).length); // the tail came twice
  });

  it('does not send a weak ETag as If-Match (it would never match, and every try would fail)', async () => {
    archives.set('/weak.zip', await bigAppZip());
    const { stats } = await stage('/weak.zip?weak-etag');
    expect(stats.files).toBe(5002);
  });

  it('reports a transfer cut short as the download failing (retryable), not as a corrupt archive', async () => {
    archives.set('/cut.zip', await bigAppZip());
    cutAfter = 1024 * 1024;
    try {
      const err = await stage('/cut.zip').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RetryableError);
      expect((err as Error).message).toMatch(/connection ended after|terminated|aborted|socket/i);
    } finally {
      cutAfter = undefined;
    }
  });

  it('refuses a missing archive with the download error', async () => {
    await expect(stage('/nope.zip')).rejects.toSatisfy((e: unknown) => e instanceof PhaseError && /answered HTTP 404/.test((e as Error).message));
  });
});
