/**
 * Test-only host tools, fetched before the suites run (package.json's pretest): every rsync
 * version Debian's archive offers this machine (the release's and the security update's),
 * unpacked side by side, so the copy tests prove that ownership holds with each one and not
 * only with the rsync this machine happens to have installed.
 *
 *   npx node test/support/host-tools.ts     fetch what is missing (a no-op when all is there)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TOOLS_DIR = fileURLToPath(new URL('../../node_modules/.cache/dropwarden-test-tools/', import.meta.url));
const RSYNC_DIR = join(TOOLS_DIR, 'rsync');
const MANIFEST = join(RSYNC_DIR, 'versions.json');

export interface RsyncBuild {
  version: string;
  binary: string;
}

/** The rsync builds that set-up fetched; throws (the test fails) when it has not run. */
export function rsyncBuilds(): RsyncBuild[] {
  if (!existsSync(MANIFEST)) throw new Error(`${MANIFEST} is missing: run npm test (its pretest runs test/support/host-tools.ts)`);
  const versions = JSON.parse(readFileSync(MANIFEST, 'utf8')) as string[];
  return versions.map((version) => ({ version, binary: join(RSYNC_DIR, version, 'usr/bin/rsync') }));
}

/**
 * apt with lists of its own under TOOLS_DIR, fetched once by `apt-get update`: every build the
 * machine's sources offer (the security suite's too, which a stock machine's lists may not hold
 * yet), while the machine's own lists, and so what set-up installs, stay as they are.
 */
const APT_DIR = join(TOOLS_DIR, 'apt');
const APT_OPTIONS = ['-o', `Dir::State::Lists=${join(APT_DIR, 'lists')}`, '-o', `Dir::Cache=${join(APT_DIR, 'cache')}`, '-o', 'APT::Sandbox::User=root'];

function privateAptLists(): void {
  if (existsSync(join(APT_DIR, 'updated'))) return;
  mkdirSync(join(APT_DIR, 'lists', 'partial'), { recursive: true });
  mkdirSync(join(APT_DIR, 'cache', 'archives', 'partial'), { recursive: true });
  process.stderr.write("host-tools: reading the archive's package lists (apt-get update, into node_modules/.cache)\n");
  execFileSync('apt-get', [...APT_OPTIONS, 'update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'] });
  writeFileSync(join(APT_DIR, 'updated'), `${new Date().toISOString()}\n`);
}

/** The versions apt offers for `pkg`, newest first (`apt-cache madison`). */
function offeredVersions(pkg: string): string[] {
  privateAptLists();
  const out = execFileSync('apt-cache', [...APT_OPTIONS, 'madison', pkg], { encoding: 'utf8' });
  const versions = out
    .split('\n')
    .filter((l) => l.includes(' Packages'))
    .map((l) => l.split('|')[1].trim());
  return [...new Set(versions)];
}

function fetchRsync(version: string): void {
  const dest = join(RSYNC_DIR, version);
  if (existsSync(join(dest, 'usr/bin/rsync'))) return;
  const work = mkdtempSync(join(RSYNC_DIR, '.fetch-'));
  try {
    process.stderr.write(`host-tools: fetching rsync ${version} (apt-get download)\n`);
    execFileSync('apt-get', [...APT_OPTIONS, 'download', '-qq', `rsync=${version}`], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download rsync=${version} left no .deb`);
    execFileSync('dpkg-deb', ['-x', join(work, deb), join(work, 'root')]);
    rmSync(dest, { recursive: true, force: true });
    renameSync(join(work, 'root'), dest);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function fetchHostTools(): void {
  mkdirSync(RSYNC_DIR, { recursive: true });
  const versions = offeredVersions('rsync');
  if (!versions.length) throw new Error('apt offers no rsync: the copy tests need its builds');
  for (const version of versions) fetchRsync(version);
  writeFileSync(MANIFEST, `${JSON.stringify(versions)}\n`);
  process.stderr.write(`host-tools: rsync ${versions.join(', ')} for the copy tests\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    fetchHostTools();
  } catch (err) {
    // The copy tests then fail naming the missing builds (or skip, where the host cannot run them).
    process.stderr.write(`host-tools: ${(err as Error).message}; going on without them\n`);
  }
}
