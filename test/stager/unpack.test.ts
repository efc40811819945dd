/**
 * Hostile input for the unpack phase (issue 3, scope 8): every archive here must be refused
 * with `Failed unpacking app: <precise reason>` and must leave nothing outside the app root.
 *
 * Each test gets a temp workspace laid out as
 *   ws/sentinel/keep.txt        a sibling that must stay untouched
 *   ws/app.zip                  the archive
 *   ws/d1/d2/d3/app/            destDir
 * so `../` escapes up to four levels deep land inside `ws`, where the before/after snapshot
 * of everything outside destDir sees them.
 */
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { UnpackLimits } from '../../functions/stager/config.ts';
import { PhaseError } from '../../functions/stager/errors.ts';
import { type UnpackStats, unpack } from '../../functions/stager/phases/unpack.ts';
import { buildZip, FLAG_ENCRYPTED, FLAG_STRONG_ENCRYPTION, S_IFDIR, S_IFREG, unicodePathExtra, type ZipEntry, type ZipOptions } from '../support/zip-builder.ts';

/** The defaults of stagerConfigFromEnv (functions/stager/config.ts). */
const DEFAULTS: UnpackLimits = {
  maxTotalBytes: 2 * 1024 ** 3,
  maxEntries: 100_000,
  maxRatio: 200,
  ratioMinBytes: 1024 ** 2,
  maxPathBytes: 4096,
  maxNameBytes: 255,
};

let ws: string;
let dest: string;
let zipPath: string;

beforeEach(async () => {
  ws = await mkdtemp(join(tmpdir(), 'dw-unpack-'));
  dest = join(ws, 'd1', 'd2', 'd3', 'app');
  zipPath = join(ws, 'app.zip');
  await mkdir(dest, { recursive: true });
  await mkdir(join(ws, 'sentinel'));
  await writeFile(join(ws, 'sentinel', 'keep.txt'), 'keep');
});

afterEach(async () => {
  await rm(ws, { recursive: true, force: true });
});

/** Every path under `root` (links not followed) with its type, size and link target; destDir excluded. */
async function snapshotOutside(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const p = join(dir, name);
      if (p === dest) continue;
      const st = await lstat(p);
      const rel = relative(root, p);
      if (st.isSymbolicLink()) out.push(`${rel} -> ${await readlink(p)}`);
      else if (st.isDirectory()) {
        out.push(`${rel}/`);
        await walk(p);
      } else out.push(`${rel} ${st.size} ${st.mode.toString(8)}`);
    }
  };
  await walk(root);
  return out;
}

/** Everything under destDir, links not followed. */
async function listDest(): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const p = join(dir, name);
      const st = await lstat(p);
      const rel = relative(dest, p);
      if (st.isSymbolicLink()) out.push(`${rel} -> ${await readlink(p)}`);
      else if (st.isDirectory()) {
        out.push(`${rel}/`);
        await walk(p);
      } else out.push(rel);
    }
  };
  await walk(dest);
  return out;
}

const exists = (p: string) =>
  lstat(p).then(
    () => true,
    () => false,
  );

function run(zip: Buffer | null, limits: Partial<UnpackLimits> = {}, signal = new AbortController().signal) {
  return (async (): Promise<UnpackStats> => {
    if (zip) await writeFile(zipPath, zip);
    return unpack({ zipPath, destDir: dest, limits: { ...DEFAULTS, ...limits }, signal });
  })();
}

/**
 * Unpacks and expects a refusal whose reason matches every pattern; checks that nothing outside
 * destDir changed and that none of `mustNotExist` (absolute paths) appeared.
 */
async function expectRefused(
  zip: Buffer,
  reason: RegExp | RegExp[],
  opts: { limits?: Partial<UnpackLimits>; mustNotExist?: string[]; pathInReason?: boolean } = {},
): Promise<PhaseError> {
  await writeFile(zipPath, zip);
  const before = await snapshotOutside(ws);
  let caught: unknown;
  try {
    await run(null, opts.limits);
  } catch (err) {
    caught = err;
  }
  expect(caught, 'unpack should have refused the archive').toBeInstanceOf(PhaseError);
  const err = caught as PhaseError;
  expect(err.phase).toBe('unpack');
  expect(err.message.startsWith('Failed unpacking app: ')).toBe(true);
  expect(err.message).toBe(`Failed unpacking app: ${err.reason}`);
  for (const r of [reason].flat()) expect(err.reason).toMatch(r);
  // The reason is for a user: no internal workspace paths (unless the entry name is one).
  if (!opts.pathInReason) expect(err.reason).not.toContain(ws);
  expect(await snapshotOutside(ws)).toEqual(before);
  for (const p of opts.mustNotExist ?? []) expect(await exists(p), `${p} must not exist`).toBe(false);
  expect(await readFile(join(ws, 'sentinel', 'keep.txt'), 'utf8')).toBe('keep');
  return err;
}

const file = (name: string | Uint8Array, data = 'x', extra: Partial<ZipEntry> = {}): ZipEntry => ({ name, data, ...extra });
const zipOf = (entries: ZipEntry[], options?: ZipOptions) => buildZip(entries, options);

describe('unpack: zip-slip', () => {
  const parent = () => join(dest, '..');

  it('refuses ../x', async () => {
    await expectRefused(zipOf([file('ok.txt'), file('../x', 'pwned')]), /escapes the app root: \.\.\/x/, {
      mustNotExist: [join(parent(), 'x')],
    });
  });

  it('refuses a/../../x', async () => {
    await expectRefused(zipOf([file('a/../../x', 'pwned')]), /escapes the app root: a\/\.\.\/\.\.\/x/, {
      mustNotExist: [join(parent(), 'x')],
    });
  });

  it('refuses a deep escape that would land in the sibling sentinel dir', async () => {
    await expectRefused(zipOf([file('../../../../sentinel/evil', 'pwned')]), /escapes the app root/, {
      mustNotExist: [join(ws, 'sentinel', 'evil')],
    });
  });

  it('refuses an absolute path /etc/x', async () => {
    await expectRefused(zipOf([file('/etc/x', 'pwned')]), [/absolute path/, /"\/etc\/x"/], {
      mustNotExist: ['/etc/x'],
    });
  });

  it('refuses an absolute path aimed into the workspace', async () => {
    const target = join(ws, 'sentinel', 'abs');
    await expectRefused(zipOf([file(target, 'pwned')]), /absolute path/, { mustNotExist: [target], pathInReason: true });
  });

  it('refuses drive letters C:/x and C:\\x', async () => {
    await expectRefused(zipOf([file('C:/x', 'pwned')]), [/drive letter/, /"C:\/x"/]);
    await expectRefused(zipOf([file('C:\\x', 'pwned')]), /backslash|drive letter/);
  });

  it('refuses backslash names ..\\..\\x (not read as ../../x)', async () => {
    await expectRefused(zipOf([file('..\\..\\x', 'pwned')]), /contains a backslash/, {
      mustNotExist: [join(dest, '..', '..', 'x'), join(dest, '..\\..\\x')],
    });
  });

  it('refuses a backslash even without dots (a\\b)', async () => {
    await expectRefused(zipOf([file('a\\b')]), /contains a backslash/);
  });

  it('refuses a Unicode Path extra field (0x7075) that smuggles ../ behind an innocent header name', async () => {
    const header = 'innocent.txt';
    await expectRefused(zipOf([file(header, 'pwned', { extra: unicodePathExtra(header, '../smuggled') })]), /escapes the app root: \.\.\/smuggled/, {
      mustNotExist: [join(dest, '..', 'smuggled')],
    });
    expect(await exists(join(dest, header))).toBe(false);
  });
});

describe('unpack: symlinks', () => {
  it('refuses a link to ../../etc', async () => {
    await expectRefused(zipOf([{ name: 'etc', symlink: '../../etc' }]), /symlink etc points outside the app root: \.\.\/\.\.\/etc/);
    expect(await exists(join(dest, 'etc'))).toBe(false);
  });

  it('refuses a link to an absolute path /etc/passwd', async () => {
    await expectRefused(zipOf([{ name: 'passwd', symlink: '/etc/passwd' }]), /symlink passwd points outside the app root: \/etc\/passwd/);
    expect(await exists(join(dest, 'passwd'))).toBe(false);
  });

  it('refuses a link that only escapes physically, through another link (d -> ., up -> ../.., esc -> a/b/up/..)', async () => {
    // Lexically every target stays inside: a/b/up/.. normalises to a/b. Physically a/b/up is
    // the root itself, so a/b/up/.. is the root's parent. Only a real resolution sees that.
    const zip = zipOf([
      file('a/b/keep.txt'),
      { name: 'd', symlink: '.' },
      { name: 'a/b/up', symlink: '../..' },
      { name: 'esc', symlink: 'a/b/up/..' },
      { name: 'esc2', symlink: 'd/a/b/up/../../sentinel' },
    ]);
    await expectRefused(zip, /symlink esc2? points outside the app root: (a\/b\/up\/\.\.|d\/a\/b\/up\/\.\.\/\.\.\/sentinel)/);
  });

  it('refuses a dangling link that escapes physically (the target does not exist yet)', async () => {
    // esc -> a/b/up/../planted: lexically a/b/planted, physically <root>/../planted, which does
    // not exist. A later writer (the plugin, a build script) following the link would create it
    // outside the app root, so such a link must be refused even though it resolves to nothing.
    const zip = zipOf([file('a/b/keep.txt'), { name: 'a/b/up', symlink: '../..' }, { name: 'esc', symlink: 'a/b/up/../planted' }]);
    await expectRefused(zip, /symlink esc points outside the app root: a\/b\/up\/\.\.\/planted/);
  });

  it('never creates anything outside while making links under a link that escapes physically', async () => {
    // e -> a/b/up/../.. is lexically `a`, physically <root>/../.. (= ws/d1/d2). Entries placed
    // "under" e must not be created through it, at ws/d1/d2/planted/…
    const zip = zipOf([file('a/b/keep.txt'), { name: 'a/b/up', symlink: '../..' }, { name: 'e', symlink: 'a/b/up/../..' }, { name: 'e/planted/l', symlink: 'x' }]);
    await expectRefused(zip, /symlink e\/planted\/l lies inside symlink e: nothing may be unpacked through a symlink/, {
      mustNotExist: [join(ws, 'd1', 'd2', 'planted')],
    });
  });

  it('never writes a file through an earlier symlink entry (inside link)', async () => {
    const zip = zipOf([file('real/keep.txt'), { name: 'l', symlink: 'real' }, file('l/x', 'through')]);
    await expectRefused(zip, /symlink l conflicts with entries inside it: nothing may be unpacked through a symlink/);
    expect(await exists(join(dest, 'real', 'x'))).toBe(false);
  });

  it('never writes a file through an earlier symlink entry that escapes', async () => {
    const zip = zipOf([file('a/b/keep.txt'), { name: 'a/b/up', symlink: '../..' }, { name: 'l', symlink: 'a/b/up/..' }, file('l/x', 'through')]);
    await expectRefused(zip, /symlink l conflicts with entries inside it/, { mustNotExist: [join(dest, '..', 'x')] });
  });

  it('refuses a symlink loop', async () => {
    await expectRefused(
      zipOf([
        { name: 'a', symlink: 'b' },
        { name: 'b', symlink: 'a' },
      ]),
      /symlink a cannot be resolved/,
    );
  });

  it('creates a symlink that stays inside the root, after the files', async () => {
    const zip = zipOf([
      { name: 'lib/', mode: S_IFDIR | 0o755 },
      { name: 'current', symlink: 'lib/v1' }, // before its target exists in the archive
      file('lib/v1/index.js', 'module.exports = 1;\n'),
      { name: 'lib/v1/self', symlink: '../..' }, // the root itself
      { name: 'dangling', symlink: 'not/there' }, // dangling but inside: allowed
    ]);
    const stats = await run(zip);
    expect(stats).toMatchObject({ entries: 5, files: 1 });
    expect(await readlink(join(dest, 'current'))).toBe('lib/v1');
    expect(await readFile(join(dest, 'current', 'index.js'), 'utf8')).toBe('module.exports = 1;\n');
    expect(await readlink(join(dest, 'lib/v1/self'))).toBe('../..');
    expect(await readlink(join(dest, 'dangling'))).toBe('not/there');
  });
});

describe('unpack: zip bombs and limits', () => {
  it('refuses an entry over the compression ratio limit (4 MiB of zeros), with default limits', async () => {
    const zeros = Buffer.alloc(4 * 1024 * 1024);
    const err = await expectRefused(zipOf([{ name: 'zeros.bin', data: zeros }]), [/entry zeros\.bin expands \d+:1/, /over the compression ratio limit of 200:1/]);
    expect(err.reason).toMatch(/zip bomb/);
    expect(await exists(join(dest, 'zeros.bin'))).toBe(false);
  });

  it('allows a high ratio below ratioMinBytes', async () => {
    await run(zipOf([{ name: 'small-zeros.bin', data: Buffer.alloc(512 * 1024) }]));
    expect((await stat(join(dest, 'small-zeros.bin'))).size).toBe(512 * 1024);
  });

  it('refuses an archive whose entries add up to more than maxTotalBytes', async () => {
    const entries = Array.from({ length: 20 }, (_, i) => file(`f${i}.txt`, 'y'.repeat(1000), { method: 'store' }));
    await expectRefused(zipOf(entries), /the archive unpacks to more than 10000 bytes \(the limit\)/, {
      limits: { maxTotalBytes: 10_000 },
    });
    expect((await listDest()).length).toBeLessThanOrEqual(10);
  });

  it('refuses an archive with more entries than maxEntries, before writing anything', async () => {
    const entries = Array.from({ length: 11 }, (_, i) => file(`f${i}.txt`));
    await expectRefused(zipOf(entries), /the archive has 11 entries, over the limit of 10/, { limits: { maxEntries: 10 } });
    expect(await listDest()).toEqual([]);
  });

  it('refuses an entry that inflates past its declared size (lying sizes), writing at most the declared bytes', async () => {
    // Declared 100 bytes (so no ratio check applies), actually 4 MiB of zeros.
    const zip = zipOf([{ name: 'liar.bin', data: Buffer.alloc(4 * 1024 * 1024), declaredUncompressedSize: 100 }]);
    await expectRefused(zip, /entry \S+ inflates to more than the 100 bytes it declares/);
    const st = await stat(join(dest, 'liar.bin')).catch(() => null);
    expect(st?.size ?? 0).toBeLessThanOrEqual(100);
  });

  it('refuses an entry whose content does not match its CRC-32', async () => {
    const zip = zipOf([{ name: 'bitrot.txt', data: 'hello world', crc32: 0x12345678 }]);
    await expectRefused(zip, /entry bitrot\.txt fails its CRC-32 check/);
  });

  it('refuses an entry that inflates to less than its declared size', async () => {
    const zip = zipOf([{ name: 'short.bin', data: 'abc', declaredUncompressedSize: 1000 }]);
    await expectRefused(zip, /entry \S+ holds \d+ bytes, not the 1000 it declares/);
  });

  it('refuses a stored entry whose compressed and uncompressed sizes differ', async () => {
    const zip = zipOf([{ name: 's.bin', data: 'abcdef', method: 'store', declaredUncompressedSize: 60_000 }]);
    await expectRefused(zip, /corrupt zip archive: .*size mismatch/);
  });

  it('refuses compressed data that runs past the end of the file', async () => {
    const zip = zipOf([{ name: 'big.bin', data: 'abcdef', declaredCompressedSize: 1_000_000 }]);
    await expectRefused(zip, /corrupt zip archive/);
  });
});

describe('unpack: broken archives', () => {
  const good = () => zipOf([file('a.txt', 'alpha '.repeat(100)), file('b/c.txt', 'gamma '.repeat(100)), file('d.txt', 'delta '.repeat(100))]);

  it('refuses an archive cut in half', async () => {
    const whole = good();
    await expectRefused(whole.subarray(0, whole.length >> 1), /not a zip archive.*truncated/);
  });

  it('refuses an archive missing its last bytes', async () => {
    const whole = good();
    await expectRefused(whole.subarray(0, whole.length - 5), /not a zip archive|corrupt zip archive/);
  });

  it('refuses an archive whose central directory points past the file', async () => {
    await expectRefused(zipOf([file('a.txt')], { eocd: { centralDirectoryOffset: 0x7fff_0000 } }), /corrupt zip archive/);
  });

  it('refuses garbage bytes', async () => {
    let seed = 42;
    const garbage = Buffer.alloc(64 * 1024);
    for (let i = 0; i < garbage.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      garbage[i] = seed >>> 24;
    }
    await expectRefused(garbage, /not a zip archive/);
  });

  it('refuses an empty file', async () => {
    await expectRefused(Buffer.alloc(0), /not a zip archive/);
  });

  it('refuses a traditionally encrypted entry (flag bit 0)', async () => {
    await expectRefused(zipOf([file('plain.txt'), file('secret.txt', 'shh', { flags: FLAG_ENCRYPTED })]), [/entry secret\.txt is encrypted/, /without a password/]);
    expect(await exists(join(dest, 'secret.txt'))).toBe(false);
  });

  it('refuses a strongly encrypted entry (flag bit 6)', async () => {
    await expectRefused(zipOf([file('secret.txt', 'shh', { flags: FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION })]), /encrypt/);
  });

  it('refuses a multi-disk archive (EOCD disk number 1)', async () => {
    await expectRefused(zipOf([file('a.txt')], { eocd: { diskNumber: 1, centralDirectoryDisk: 1 } }), /multi-disk .*not supported/);
  });

  it('refuses an unsupported compression method', async () => {
    const zip = zipOf([file('a.txt', 'abc', { method: 'store' })]);
    // Patch method 0 -> 14 (LZMA) in the central directory record (offset 10 from its signature).
    const cd = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    zip.writeUInt16LE(14, cd + 10);
    await expectRefused(zip, /uses compression method 14: only stored and deflate are supported/);
  });
});

describe('unpack: names', () => {
  it('refuses the same name twice', async () => {
    await expectRefused(zipOf([file('a/b', 'one'), file('a/b', 'two')]), /duplicate entry: a\/b appears more than once/);
  });

  it('refuses a/b and a//b as duplicates', async () => {
    await expectRefused(zipOf([file('a/b', 'one'), file('a//b', 'two')]), /duplicate entry: a\/b/);
  });

  it('refuses a/b and ./a/b as duplicates', async () => {
    await expectRefused(zipOf([file('a/b', 'one'), file('./a/b', 'two')]), /duplicate entry: a\/b/);
  });

  it('refuses a directory and a file of the same name', async () => {
    await expectRefused(zipOf([{ name: 'a/', mode: S_IFDIR | 0o755 }, file('a')]), /duplicate entry: a\b/);
  });

  it('refuses a file and then a file beneath it, naming the entry and not the workspace', async () => {
    // Which of the two is refused depends on which write lands first; either way, by name.
    await expectRefused(zipOf([file('a', 'file'), file('a/b', 'below')]), /entry a\/b conflicts with another entry: .*\ba\b|entries conflict .*: a already exists/);
  });

  it('refuses a file where an earlier entry made a directory, while other writes are in flight', async () => {
    // This once crashed the process: the failed write destroyed a yauzl stream whose read was
    // still queued behind the parallel writes (uncaught TypeError in fd-slicer), and unpack hung.
    let seed = 7;
    const noise = Buffer.alloc(1 << 20);
    for (let i = 0; i < noise.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      noise[i] = seed >>> 24;
    }
    const big = (name: string): ZipEntry => ({ name, data: noise, method: 'store' });
    const entries = [...Array.from({ length: 7 }, (_, i) => big(`f/${i}.bin`)), file('d/x'), big('d'), ...Array.from({ length: 8 }, (_, i) => big(`g/${i}.bin`))];
    await expectRefused(zipOf(entries), /entries conflict .*: d is a directory|entries conflict .*: d already exists/);
  });

  it('refuses a name longer than 4096 bytes', async () => {
    const name = Array.from({ length: 40 }, () => 'd'.repeat(200)).join('/'); // 8039 bytes, components fine
    await expectRefused(zipOf([file(name)]), /entry name is longer than 4096 bytes/);
  });

  it('refuses a path component longer than 255 bytes', async () => {
    await expectRefused(zipOf([file(`dir/${'n'.repeat(256)}`)]), /has a path component longer than 255 bytes/);
    // 86 three-byte characters = 258 bytes, though only 86 characters.
    await expectRefused(zipOf([file('€'.repeat(86))]), /path component longer than 255 bytes/);
  });

  it('refuses a NUL byte in a name', async () => {
    const name = Buffer.concat([Buffer.from('evil.txt'), Buffer.from([0]), Buffer.from('.jpg')]);
    await expectRefused(zipOf([file(name)]), /has a NUL byte in its name/);
  });
});

describe('unpack: normal archives', () => {
  it('unpacks nested dirs, modes, dotfiles, empty dirs and UTF-8 names', async () => {
    const zip = zipOf([
      { name: 'src/', mode: S_IFDIR | 0o755 },
      file('src/lib/deep/mod.js', 'export const x = 1;\n', { mode: S_IFREG | 0o644 }),
      file('bin/start', '#!/bin/sh\nexec node server.js\n', { mode: S_IFREG | 0o755 }),
      file('README.md', '# hi\n', { mode: S_IFREG | 0o600 }),
      file('.env', 'A=1\n', { mode: S_IFREG | 0o644 }),
      file('.config/app.json', '{}'),
      { name: 'empty/', mode: S_IFDIR | 0o755 },
      { name: 'also/empty/' }, // made elsewhere: no unix mode, trailing slash only
      file('straße/日本語.txt', 'こんにちは'),
      file('setuid', 'x', { mode: S_IFREG | 0o4755 }),
      file('./dot-slash.txt', 'ok'),
      file('stored.bin', Buffer.from([0, 1, 2, 255]).toString('latin1'), { method: 'store' }),
    ]);
    const stats = await run(zip);
    expect(stats).toEqual({ entries: 12, files: 9, bytes: expect.any(Number) });
    expect(await listDest()).toEqual(
      [
        '.config/',
        '.config/app.json',
        '.env',
        'README.md',
        'also/',
        'also/empty/',
        'bin/',
        'bin/start',
        'dot-slash.txt',
        'empty/',
        'setuid',
        'src/',
        'src/lib/',
        'src/lib/deep/',
        'src/lib/deep/mod.js',
        'stored.bin',
        'straße/',
        'straße/日本語.txt',
      ].sort(),
    );
    const mode = async (p: string) => (await stat(join(dest, p))).mode & 0o7777;
    expect(await mode('bin/start')).toBe(0o755);
    expect(await mode('src/lib/deep/mod.js')).toBe(0o644);
    expect(await mode('README.md')).toBe(0o644); // normalised: executable or not
    expect(await mode('setuid')).toBe(0o755); // no setuid from an archive
    expect(await readFile(join(dest, 'straße/日本語.txt'), 'utf8')).toBe('こんにちは');
    expect(await readFile(join(dest, '.env'), 'utf8')).toBe('A=1\n');
    expect(await readFile(join(dest, 'src/lib/deep/mod.js'), 'utf8')).toBe('export const x = 1;\n');
    expect(await snapshotOutside(ws)).toEqual([
      'app.zip ' + zip.length + ' ' + (await stat(zipPath)).mode.toString(8),
      'd1/',
      'd1/d2/',
      'd1/d2/d3/',
      'sentinel/',
      'sentinel/keep.txt 4 ' + (await stat(join(ws, 'sentinel/keep.txt'))).mode.toString(8),
    ]);
  });

  it('reports progress and byte counts', async () => {
    const seen: number[] = [];
    await writeFile(zipPath, zipOf([file('a', 'aaaa'), file('b', 'bb'), { name: 'c/' }]));
    const stats = await unpack({
      zipPath,
      destDir: dest,
      limits: DEFAULTS,
      signal: new AbortController().signal,
      onProgress: (done) => seen.push(done),
    });
    expect(stats).toEqual({ entries: 3, files: 2, bytes: 6 });
    expect(seen.length).toBe(2);
  });
});

describe('unpack: cancellation', () => {
  it('rejects at once with the signal reason when already aborted, writing nothing', async () => {
    const ac = new AbortController();
    const reason = new Error('deadline passed');
    ac.abort(reason);
    await expect(run(zipOf([file('a.txt'), file('b.txt')]), {}, ac.signal)).rejects.toBe(reason);
    expect(await listDest()).toEqual([]);
  });

  it('stops unpacking when the signal is aborted midway', async () => {
    const total = 400;
    const entries = Array.from({ length: total }, (_, i) => file(`f/${String(i).padStart(4, '0')}.txt`, `file ${i}\n`.repeat(50)));
    await writeFile(zipPath, zipOf(entries));
    const ac = new AbortController();
    const reason = new Error('deadline passed');
    let done = 0;
    const p = unpack({
      zipPath,
      destDir: dest,
      limits: DEFAULTS,
      signal: ac.signal,
      onProgress: () => {
        if (++done === 5) ac.abort(reason);
      },
    });
    await expect(p).rejects.toBe(reason);
    const written = (await readdir(join(dest, 'f'))).length;
    expect(written).toBeGreaterThanOrEqual(5);
    expect(written).toBeLessThan(total);
  });

  it('lets a timer (the staging deadline) fire while it unpacks many small entries', async () => {
    const total = 20_000;
    const entries = Array.from({ length: total }, (_, i) => file(`g/${i}.txt`, `${i}\n`));
    await writeFile(zipPath, zipOf(entries));
    const ac = new AbortController();
    const reason = new Error('deadline passed');
    setTimeout(() => ac.abort(reason), 30);
    await expect(unpack({ zipPath, destDir: dest, limits: DEFAULTS, signal: ac.signal })).rejects.toBe(reason);
  });
});
