import { createCipheriv } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, lstatSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { create } from 'tar';
import { afterAll, describe, expect, it } from 'vitest';
import { DROPLET_MTIME, pack } from '../../functions/stager/phases/pack.ts';

const dir = mkdtempSync(join(tmpdir(), 'dropwarden-pack-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const noise = (bytes: number, seed: number) => createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(bytes));

/** Every kind of entry whose header node-tar writes differently: long and non-ASCII names, links, sizes around 512. */
function trickyDroplet(root: string): void {
  mkdirSync(join(root, 'app/empty-dir'), { recursive: true });
  mkdirSync(join(root, 'logs'));
  mkdirSync(join(root, 'tmp'));
  writeFileSync(join(root, 'startup'), '#!/bin/bash\necho hi\n', { mode: 0o755 });
  writeFileSync(join(root, 'app/.env'), 'A=1\n');
  writeFileSync(join(root, 'app/empty.txt'), '');
  for (const n of [1, 511, 512, 513, 1024, 100_000]) writeFileSync(join(root, `app/size-${n}`), noise(n, n % 251));
  writeFileSync(join(root, 'app/big.bin'), noise(3 * 1024 * 1024 + 17, 3)); // several gzip blocks, > 1 MiB
  writeFileSync(join(root, 'app/text.js'), 'console.log("hello");\n'.repeat(40_000));
  writeFileSync(join(root, 'app/ünïcødé name.txt'), 'unicode\n');
  const deep = join(root, 'app', 'a'.repeat(60), 'b'.repeat(60), 'c'.repeat(60));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, `${'long-name-'.repeat(9)}.txt`), 'prefix field\n'); // > 100 bytes of path
  const deeper = join(deep, 'd'.repeat(90), 'e'.repeat(90));
  mkdirSync(deeper, { recursive: true });
  writeFileSync(join(deeper, 'f.txt'), 'pax path\n'); // > 255 bytes: a pax header
  symlinkSync('text.js', join(root, 'app/link-to-text'));
  symlinkSync('../startup', join(root, 'app/link-up'));
  symlinkSync(`${'x'.repeat(120)}`, join(root, 'app/long-link')); // pax linkpath
}

/** The same list in the same order, archived by node-tar's own Pack with the droplet's options. */
function referenceTar(root: string): Buffer {
  const list: string[] = [];
  const walk = (rel: string) => {
    const names = readdirSync(rel ? join(root, rel) : root).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      if (lstatSync(join(root, childRel)).isDirectory()) {
        list.push(`./${childRel}/`);
        walk(childRel);
      } else list.push(`./${childRel}`);
    }
  };
  walk('');
  const out = join(dir, 'reference.tar');
  create({ cwd: root, file: out, sync: true, portable: true, mtime: DROPLET_MTIME, noDirRecurse: true }, list);
  return readFileSync(out);
}

describe('pack', () => {
  it('archives exactly the bytes node-tar writes for the same entries and options', async () => {
    const root = join(dir, 'droplet');
    trickyDroplet(root);
    const dest = join(dir, 'droplet.tgz');
    const packed = await pack({ dropletDir: root, dest, gzipLevel: 6, signal: new AbortController().signal });
    const ours = gunzipSync(readFileSync(dest));
    const reference = referenceTar(root);
    // node-tar pads the archive to a multiple of its 10 240-byte record; the droplet ends after the two zero blocks.
    expect(ours.length).toBeLessThanOrEqual(reference.length);
    expect(ours.equals(reference.subarray(0, ours.length))).toBe(true);
    expect(reference.subarray(ours.length).every((b) => b === 0)).toBe(true);
    expect(packed.entries).toBeGreaterThan(20);
  });

  it('refuses a symlink that points outside the droplet (DESIGN §4: self-contained)', async () => {
    for (const [name, target] of [
      ['abs', '/usr/bin/python3'],
      ['up', '../../outside'],
    ] as const) {
      const root = join(dir, `link-${name}`);
      mkdirSync(join(root, 'app'), { recursive: true });
      symlinkSync(target, join(root, 'app', 'link'));
      await expect(pack({ dropletDir: root, dest: join(dir, `link-${name}.tgz`), gzipLevel: 6, signal: new AbortController().signal })).rejects.toThrow(
        `app/link is a symlink to ${target}, outside the droplet`,
      );
    }
  });

  it('refuses an entry that is neither a file, a directory nor a symlink', async () => {
    const root = join(dir, 'fifo-droplet');
    mkdirSync(join(root, 'app'), { recursive: true });
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [join(root, 'app/pipe')]);
    await expect(pack({ dropletDir: root, dest: join(dir, 'fifo.tgz'), gzipLevel: 6, signal: new AbortController().signal })).rejects.toThrow(
      /app\/pipe is not a regular file, directory or symlink/,
    );
  });
});
