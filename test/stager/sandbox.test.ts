/**
 * The sandbox of DESIGN §8, probed from inside as an attacker's install script would: each
 * probe writes what it found into the build dir, and the test asserts each outcome, then
 * checks the host afterwards.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { execUntrusted } from '../../functions/stager/exec.ts';
import { sandboxMode } from '../../functions/stager/sandbox.ts';
import { StagingTimeoutError } from '../../functions/stager/errors.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function buildDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'dw-sbx-'));
  dirs.push(root);
  return root;
}

const PROBES = String.raw`
out="$1/probes"; : > "$out"
r() { echo "$1=$2" >> "$out"; }
env | grep -E '^(AWS_|DROPWARDEN_)' >/dev/null && r env leaked || r env clean
n=0; for f in /proc/[0-9]*/environ; do if grep -qa AWS_SECRET "$f" 2>/dev/null; then n=$((n+1)); fi; done; r procenv "$n"
r procs "$(ls -d /proc/[0-9]* | wc -l)"
echo x > /tmp/dw-sbx-probe-$2 2>/dev/null && r tmpwrite private || r tmpwrite denied
echo x > /var/tmp/dw-sbx-probe-$2 2>/dev/null && r vartmpwrite private || r vartmpwrite denied
echo x > /etc/dw-sbx-probe-$2 2>/dev/null && r etcwrite ok || r etcwrite denied
echo x > "$1/inside" && r buildwrite ok
timeout 3 bash -c 'exec 3<>/dev/tcp/169.254.169.254/80' 2>/dev/null && r metadata reached || r metadata refused
timeout 3 bash -c 'exec 3<>/dev/tcp/169.254.170.2/80' 2>/dev/null && r ecsmeta reached || r ecsmeta refused
timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$3" 2>/dev/null && r loopback reached || r loopback refused
setsid bash -c 'sleep 300' & echo $! > "$1/survivor"
( ( sleep 300 & echo $! > "$1/doublefork" ) & )
r uid "$(id -u)"
`;

it('an untrusted program gets no credentials, no other process, no host writes, no host ports, and leaves no process', async () => {
  const dir = buildDir();
  const server = createServer((s) => s.end('hello')).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as { port: number }).port;
  const tag = String(process.pid);
  process.env.AWS_SECRET_ACCESS_KEY = 'sbx-test-secret'; // the stager's own environment holds it
  try {
    await execUntrusted('bash', ['-c', PROBES, 'probe', dir, tag, String(port)], {
      log: () => {},
      signal: new AbortController().signal,
      sandbox: { writable: [dir] },
    });
  } finally {
    delete process.env.AWS_SECRET_ACCESS_KEY;
    server.close();
  }
  const found = Object.fromEntries(
    readFileSync(join(dir, 'probes'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split('=')),
  );
  expect(found).toMatchObject({
    env: 'clean',
    procenv: '0',
    tmpwrite: 'private',
    vartmpwrite: 'private',
    etcwrite: 'denied',
    buildwrite: 'ok',
    metadata: 'refused',
    ecsmeta: 'refused',
    loopback: 'refused',
  });
  expect(Number(found.uid)).toBeGreaterThanOrEqual(2_000_000);
  expect(Number(found.procs)).toBeLessThan(10); // only its own processes are in its /proc
  // On the host: no file it wrote outside its build dir, and nothing it started still runs.
  expect(existsSync(`/tmp/dw-sbx-probe-${tag}`)).toBe(false);
  expect(existsSync(`/var/tmp/dw-sbx-probe-${tag}`)).toBe(false);
  expect(existsSync(`/etc/dw-sbx-probe-${tag}`)).toBe(false);
  const survivors = (await import('node:child_process')).execSync("pgrep -f '^sleep 300$' || true").toString().trim();
  expect(survivors).toBe('');
});

it('the deadline kills the whole sandbox, setsid children included', async () => {
  const dir = buildDir();
  const deadline = new AbortController();
  let ready!: () => void;
  const started = new Promise<void>((r) => (ready = r));
  const run = execUntrusted('bash', ['-c', 'setsid sleep 301 & echo ready; wait', 'probe'], {
    log: (line) => line === 'ready' && ready(),
    signal: deadline.signal,
    sandbox: { writable: [dir] },
  });
  await started;
  deadline.abort(new StagingTimeoutError(1));
  await expect(run).rejects.toBeInstanceOf(StagingTimeoutError);
  await new Promise((r) => setTimeout(r, 300));
  const { execSync } = await import('node:child_process');
  expect(execSync("pgrep -f '^sleep 301$' || true").toString().trim()).toBe('');
});

it('env-only (on Lambda, in the builder function): the program still gets only the variables named', async () => {
  const dir = buildDir();
  process.env.AWS_SECRET_ACCESS_KEY = 'sbx-test-secret';
  try {
    await execUntrusted('bash', ['-c', 'env > "$1/env"', 'probe', dir], {
      log: () => {},
      signal: new AbortController().signal,
      env: { NAMED: 'yes' },
      sandbox: { mode: 'env-only', writable: [dir] },
    });
  } finally {
    delete process.env.AWS_SECRET_ACCESS_KEY;
  }
  const env = readFileSync(join(dir, 'env'), 'utf8');
  expect(env).toContain('NAMED=yes');
  expect(env).not.toMatch(/^(AWS_|DROPWARDEN_)/m);
});

it('DROPWARDEN_SANDBOX takes namespaces or env-only and refuses anything else by name', () => {
  expect(sandboxMode(undefined)).toBe('namespaces');
  expect(sandboxMode('env-only')).toBe('env-only');
  expect(() => sandboxMode('off')).toThrow('DROPWARDEN_SANDBOX must be "namespaces" or "env-only", not "off"');
});
