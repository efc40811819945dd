/**
 * Acceptance for DESIGN §8 at the plugin level: an app whose locked dependency has a
 * `postinstall` that probes like an attacker (test/apps/node-probe) stages and serves, and every
 * probe fails; the host is checked afterwards. The stager's environment holds credentials, as the
 * Lambda function's does, and a stand-in for the stack's S3 on loopback answers 200 to any PUT.
 */
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { appPath, stageApp, startDroplet, stopDroplet } from './helpers.ts';

const tag = `t${process.pid}`;
let s3: ReturnType<typeof createServer>;
let s3Addr = '';
let puts = 0;

beforeAll(async () => {
  s3 = createServer((req, res) => {
    if (req.method === 'PUT') puts++;
    res.end();
  }).listen(0, '127.0.0.1');
  await new Promise((r) => s3.once('listening', r));
  s3Addr = `127.0.0.1:${(s3.address() as { port: number }).port}`;
  process.env.AWS_ACCESS_KEY_ID = 'AKIAPROBETEST';
  process.env.AWS_SECRET_ACCESS_KEY = 'probe-test-secret';
});
afterAll(() => {
  delete process.env.AWS_ACCESS_KEY_ID;
  delete process.env.AWS_SECRET_ACCESS_KEY;
  s3.close();
});

async function stageProbe(fixture: string, probeFiles: (app: string) => string[] = () => ['probes.txt']): Promise<string> {
  const { dir } = await stageApp(fixture, {}, (app) => {
    writeFileSync(join(app, 'probe-tag'), tag);
    writeFileSync(join(app, 'probe-s3'), s3Addr);
  });
  for (const file of probeFiles(join(dir, 'app'))) {
    const probes = Object.fromEntries(
      readFileSync(join(dir, 'app', file), 'utf8')
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(probes, file).toEqual({ env: 'clean', procenv: '0', tmpwrite: 'private-only', metadata: 'refused', ecsmeta: 'refused', s3put: 'refused', done: 'yes' });
  }
  expect(puts).toBe(0);
  expect(existsSync(`/tmp/dw-probe-${tag}`)).toBe(false);
  expect(existsSync(`/var/tmp/dw-probe-${tag}`)).toBe(false);
  expect(execSync(`pgrep -f '[d]w-probe-survivor-${tag}' || true`).toString().trim()).toBe('');
  return dir;
}

it('node-probe: a postinstall reaches no credential, no metadata, no S3, no host file, and leaves no process; the app serves', async () => {
  const dir = await stageProbe('node-probe');
  const running = await startDroplet(dir);
  expect(await (await running.get()).text()).toBe('probed\n');
  await stopDroplet(dir, running);
});

it('buildpack-probe: a bin/detect (asked during detection too) and a bin/compile that probe the same get the same answers; the app serves', async () => {
  vi.stubEnv('DROPWARDEN_BUILDPACKS', appPath('buildpacks/probe'));
  try {
    const dir = await stageProbe('buildpack-probe', (app) => {
      const detects = readdirSync(app).filter((f) => f.startsWith('detect-probes-'));
      expect(detects, 'bin/detect asked by detection and by the staging').toHaveLength(2);
      return ['probes.txt', ...detects];
    });
    const running = await startDroplet(dir);
    expect((await running.get()).status).toBe(200);
    await stopDroplet(dir, running);
  } finally {
    vi.unstubAllEnvs();
  }
});
