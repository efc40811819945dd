import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { gzipStream } from '../../lib/archive/gzip.ts';
import { pack } from '../../functions/stager/phases/pack.ts';

const dir = mkdtempSync(join(tmpdir(), 'dropwarden-gzip-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Deterministic mixed data: text-like runs and pseudo-random bytes. */
function sample(bytes: number, seed = 1): Buffer {
  const out = Buffer.alloc(bytes);
  let s = seed;
  for (let i = 0; i < bytes; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = (i >> 12) % 2 ? s >>> 24 : 97 + ((s >>> 16) % 7);
  }
  return out;
}

async function gz(data: Buffer, opts: Parameters<typeof gzipStream>[1] = {}, chunk = 65536, level = 6): Promise<Buffer> {
  const parts: Buffer[] = [];
  const chunks = function* () {
    for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
  };
  await pipeline(
    Readable.from(chunks()),
    gzipStream(level, opts),
    new Writable({
      write(c: Buffer, _e, cb) {
        parts.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(parts);
}

function systemGzipTest(buf: Buffer, name: string): void {
  const file = join(dir, `${name}.gz`);
  writeFileSync(file, buf);
  execFileSync('gzip', ['-t', file]); // throws on a bad stream, CRC or length
}

describe('parallel gzip', () => {
  const B = 64 * 1024; // a small block size, so the tests cross many block boundaries

  it('round-trips through node:zlib and system gzip -t, at sizes around block boundaries', async () => {
    for (const size of [0, 1, 100, B - 1, B, B + 1, 2 * B, 3 * B - 1, 3 * B + 7, 10 * B + 12345]) {
      const data = sample(size, size + 1);
      const out = await gz(data, { blockSize: B });
      expect(gunzipSync(out).equals(data), `size ${size}`).toBe(true);
      systemGzipTest(out, `size-${size}`);
    }
  });

  it('writes a valid gzip member for empty input', async () => {
    const out = await gz(Buffer.alloc(0));
    expect(out.subarray(0, 3)).toEqual(Buffer.from([0x1f, 0x8b, 8]));
    expect(gunzipSync(out).length).toBe(0);
    systemGzipTest(out, 'empty');
  });

  it('gives the same bytes whatever the concurrency and the input chunking', async () => {
    const data = sample(9 * B + 333, 7);
    const ref = await gz(data, { blockSize: B, concurrency: 1 });
    const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    for (const [concurrency, chunk] of [
      [2, 65536],
      [4, 1000],
      [3, 7 * B + 5],
    ] as const) {
      expect(digest(await gz(data, { blockSize: B, concurrency }, chunk))).toBe(digest(ref));
    }
    expect(gunzipSync(ref).equals(data)).toBe(true);
  });

  it('uses the previous block as a dictionary: repeated data across blocks stays small', async () => {
    const unit = sample(16 * 1024, 3);
    const data = Buffer.concat(Array.from({ length: 64 }, () => unit)); // 1 MiB, 16 KiB period
    const out = await gz(data, { blockSize: B });
    expect(gunzipSync(out).equals(data)).toBe(true);
    // Without the dictionary each 64 KiB block would pay for the 16 KiB unit again (~16 × ~10 KiB).
    expect(out.length).toBeLessThan(40 * 1024);
  });

  it('compresses within 1 % of single-stream gzip at the same level', async () => {
    const data = sample(4 * 1024 * 1024, 11);
    const { gzipSync } = await import('node:zlib');
    const single = gzipSync(data, { level: 6 }).length;
    const parallel = (await gz(data)).length;
    expect(parallel).toBeLessThan(single * 1.01);
  });

  it('stores already-compressed stretches instead of deflating them, and still round-trips', async () => {
    // AES-CTR keystream: what encrypted or well-compressed bytes look like.
    const random = (bytes: number, seed: number) => createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(bytes));
    const text = Buffer.from('the quick brown fox jumps over the lazy dog; '.repeat(2000));
    // Stored and deflated runs alternating at odd offsets, across block boundaries, ending stored.
    const data = Buffer.concat([text.subarray(0, 40_000), random(150_001, 9), text.subarray(0, 70_000), random(33_333, 4)]);
    for (const blockSize of [B, 256 * 1024]) {
      const out = await gz(data, { blockSize });
      expect(gunzipSync(out).equals(data), `block ${blockSize}`).toBe(true);
      systemGzipTest(out, `mixed-${blockSize}`);
    }
    const noise = random(1024 * 1024 - 1000, 5); // not a whole number of blocks: no empty final block
    const stored = await gz(noise, { blockSize: B });
    expect(gunzipSync(stored).equals(noise)).toBe(true);
    // Stored: 5 bytes per 32 KiB block, plus gzip's header and trailer; nothing spent trying.
    expect(stored.length).toBe(noise.length + 5 * 32 + 18);
  });

  it('refuses block sizes under the 32 KiB dictionary', () => {
    expect(() => gzipStream(6, { blockSize: 1024 })).toThrow(/at least 32768/);
  });
});

describe('pack', () => {
  it('writes a droplet that gzip -t and tar tzf accept, with the same sha256 each time', async () => {
    const root = join(dir, 'droplet');
    execFileSync('mkdir', ['-p', join(root, 'app/lib'), join(root, 'logs'), join(root, 'tmp')]);
    writeFileSync(join(root, 'startup'), '#!/bin/bash\n', { mode: 0o755 });
    writeFileSync(join(root, 'app/big.bin'), sample(3 * 1024 * 1024 + 17, 5));
    for (let i = 0; i < 50; i++) writeFileSync(join(root, `app/lib/f${i}.txt`), `file ${i}\n`.repeat(i * 100));
    const sums: string[] = [];
    for (let i = 0; i < 2; i++) {
      const dest = join(dir, `droplet-${i}.tgz`);
      const out = await pack({ dropletDir: root, dest, gzipLevel: 6, signal: new AbortController().signal });
      execFileSync('gzip', ['-t', dest]);
      const listing = execFileSync('tar', ['tzf', dest], { encoding: 'utf8' }).split('\n');
      expect(listing).toContain('./startup');
      expect(listing).toContain('./app/big.bin');
      expect(listing).toContain('./app/lib/f49.txt');
      expect(out.sha256).toBe(
        createHash('sha256')
          .update(execFileSync('cat', [dest]))
          .digest('hex'),
      );
      sums.push(out.sha256);
    }
    expect(sums[0]).toBe(sums[1]);
  });
});
