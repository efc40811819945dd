/**
 * The parts of the safe unzip (lib/archive/), each on its own: the entry-name rules, the
 * symlink-target rule, the zip reader's open errors, and extract's refusals as ArchiveErrors
 * (no stager phase involved: the unpack phase maps them, DESIGN §9 *Phases*).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { safeEntryPath } from '../../lib/archive/entry-names.ts';
import { ArchiveError } from '../../lib/archive/errors.ts';
import { ZipOpenError, extractZip } from '../../lib/archive/extract.ts';
import type { UnpackLimits } from '../../lib/archive/limits.ts';
import { checkLinkTarget } from '../../lib/archive/links.ts';
import { describeOpenError } from '../../lib/archive/zip-reader.ts';
import { zipTree } from '../support/zip.ts';

const limits: UnpackLimits = { maxTotalBytes: 1 << 20, maxEntries: 10, maxRatio: 200, ratioMinBytes: 1 << 20, maxPathBytes: 4096, maxNameBytes: 255 };
const work = mkdtempSync(join(tmpdir(), 'dw-archive-parts-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ArchiveError);
    return (err as ArchiveError).reason;
  }
  throw new Error('not refused');
};

describe('entry names', () => {
  it('normalises a relative name', () => {
    expect(safeEntryPath('./a//b/./c.txt', limits)).toBe('a/b/c.txt');
    expect(safeEntryPath('dir/', limits)).toBe('dir');
  });
  it.each([
    ['a/../../etc/passwd', 'entry escapes the app root: a/../../etc/passwd'],
    ['/etc/passwd', 'entry "/etc/passwd" is an absolute path: entries must be relative paths'],
    ['C:/x', 'entry "C:/x" has a drive letter: entries must be relative paths'],
    ['a\\b', 'entry "a\\\\b" contains a backslash: zip entry names must use "/"'],
    ['', 'an entry has an empty name'],
  ])('refuses %j', (name, reason) => {
    expect(refusal(() => safeEntryPath(name, limits))).toBe(reason);
  });
  it('refuses a component over the name limit', () => {
    expect(refusal(() => safeEntryPath(`${'x'.repeat(256)}/f`, limits))).toMatch(/path component longer than 255 bytes/);
  });
});

describe('symlink targets, by name', () => {
  it('allows a target inside the root and refuses one outside', () => {
    expect(() => checkLinkTarget('a/b/link', '../c')).not.toThrow();
    expect(refusal(() => checkLinkTarget('a/link', '../../x'))).toBe('symlink a/link points outside the app root: ../../x');
    expect(refusal(() => checkLinkTarget('link', '/etc'))).toBe('symlink link points outside the app root: /etc');
  });
});

describe('extract', () => {
  it('unpacks a zip and counts what it wrote', async () => {
    const zip = join(work, 'ok.zip');
    writeFileSync(zip, await zipTree({ 'a.txt': 'hello', 'd/b.txt': 'bye' }));
    const dest = mkdtempSync(join(work, 'ok-'));
    const stats = await extractZip({ zipPath: zip, destDir: dest, limits, signal: new AbortController().signal });
    expect(stats).toMatchObject({ files: 2, bytes: 8 });
  });
  it('refuses an archive over the entry limit with an ArchiveError', async () => {
    const zip = join(work, 'many.zip');
    writeFileSync(zip, await zipTree(Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`f${i}`, 'x']))));
    const dest = mkdtempSync(join(work, 'many-'));
    const err = await extractZip({ zipPath: zip, destDir: dest, limits, signal: new AbortController().signal }).catch((e) => e);
    expect(err).toBeInstanceOf(ArchiveError);
    expect(err.reason).toMatch(/^the archive has 11 entries, over the limit of 10$/);
  });
  it("says a file that is no zip cannot be opened, with yauzl's reason as the cause", async () => {
    const zip = join(work, 'not.zip');
    writeFileSync(zip, 'not a zip at all');
    const err = await extractZip({ zipPath: zip, destDir: mkdtempSync(join(work, 'not-')), limits, signal: new AbortController().signal }).catch((e) => e);
    expect(err).toBeInstanceOf(ZipOpenError);
    expect(describeOpenError(err.cause)).toMatch(/^not a zip archive/);
  });
});
