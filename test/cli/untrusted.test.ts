/**
 * DESIGN §8 acceptance on the running local stack, as a user stages: `dropwarden up` started
 * with AWS credentials in its environment (as the Lambda function has them), then `dropwarden
 * stage` of test/apps/node-probe (a locked dependency's postinstall probes like an attacker) and
 * of test/apps/buildpack-probe (a buildpack whose bin/detect and bin/compile probe the same).
 * Every probe fails: no credential in its environment or in any /proc/<pid>/environ, no metadata
 * address, no PUT over another app's droplet on the stack's S3, no file outside its build and no
 * process left. The outcomes are read from the droplet, and the host is checked afterwards.
 */
import { execFileSync, execSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMULATOR_CREDENTIALS } from '../../lib/aws/clients.ts';
import { type RunningUp, runCli, startUp } from '../support/cli.ts';

const APPS = new URL('../apps', import.meta.url).pathname;
const CLEAN = { env: 'clean', procenv: '0', tmpwrite: 'private-only', metadata: 'refused', ecsmeta: 'refused', s3put: 'refused', done: 'yes' };
const OTHER_DROPLET = 'other-app/droplet.tgz';

describe('untrusted staging code on a running up with credentials in its environment', () => {
  let up: RunningUp;
  let tmp: string;
  let s3: S3Client;
  let bucket: string;
  let emulatorHost: string;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dw-untrusted-up-'));
    up = await startUp([], {
      partsEnv: { AWS_ACCESS_KEY_ID: 'AKIAUPPROBETEST', AWS_SECRET_ACCESS_KEY: 'up-probe-test-secret', DROPWARDEN_BUILDPACKS: join(APPS, 'buildpacks', 'probe') },
    });
    const config = JSON.parse((await runCli(['config', '--json'], up.env)).stdout);
    emulatorHost = new URL(config.endpoint).host;
    bucket = config.buckets.droplets;
    s3 = new S3Client({ region: config.region, endpoint: config.endpoint, forcePathStyle: true, credentials: EMULATOR_CREDENTIALS });
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: OTHER_DROPLET, Body: 'the other app' }));
  }, 90_000);
  afterAll(async () => {
    s3?.destroy();
    await up?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  /** Stages a copy of the fixture with its probe tag and the stack's S3 address; returns the droplet's files. */
  async function stageProbe(fixture: string): Promise<{ tag: string; droplet: string; files: string[] }> {
    const tag = `u${process.pid}${fixture.length}`;
    const app = join(tmp, fixture);
    cpSync(join(APPS, fixture), app, { recursive: true });
    writeFileSync(join(app, 'probe-tag'), tag);
    writeFileSync(join(app, 'probe-s3'), emulatorHost);
    const droplet = join(tmp, `${fixture}.tgz`);
    const run = await runCli(['stage', app, '--app-id', fixture, '--droplet-out', droplet, '--json'], up.env, 180_000);
    expect(run.code, run.stderr).toBe(0);
    const files = execFileSync('tar', ['tzf', droplet], { encoding: 'utf8' }).trim().split('\n');
    return { tag, droplet, files };
  }

  const probesIn = (droplet: string, file: string) =>
    Object.fromEntries(
      execFileSync('tar', ['xzOf', droplet, `./app/${file}`], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );

  async function expectNothingLeft(tag: string): Promise<void> {
    expect(existsSync(`/tmp/dw-probe-${tag}`)).toBe(false);
    expect(existsSync(`/var/tmp/dw-probe-${tag}`)).toBe(false);
    expect(execSync(`pgrep -f '[d]w-probe-survivor-${tag}' || true`).toString().trim()).toBe('');
    const other = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: OTHER_DROPLET }));
    expect(await other.Body!.transformToString()).toBe('the other app');
  }

  it('node-probe: every probe of its postinstall fails, and nothing is left', async () => {
    const { tag, droplet } = await stageProbe('node-probe');
    expect(probesIn(droplet, 'probes.txt')).toEqual(CLEAN);
    await expectNothingLeft(tag);
  }, 240_000);

  it('buildpack-probe: every probe of bin/detect (during detection and the staging) and of bin/compile fails, and nothing is left', async () => {
    const { tag, droplet, files } = await stageProbe('buildpack-probe');
    const detects = files.filter((f) => f.startsWith('./app/detect-probes-')).map((f) => f.slice('./app/'.length));
    expect(detects).toHaveLength(2);
    for (const file of ['probes.txt', ...detects]) expect(probesIn(droplet, file), file).toEqual(CLEAN);
    await expectNothingLeft(tag);
  }, 240_000);
});
