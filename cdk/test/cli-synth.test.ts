/**
 * `cdk synth` through the pinned CLI, as a cloud team runs it: cdk.json's app command (Node's
 * own type stripping), the CLI reading this aws-cdk-lib's assembly, no network, no Docker.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { OUTPUT } from '../../contracts/stack-outputs.ts';
import { projectRoot } from './synth.ts';

const outdir = mkdtempSync(join(tmpdir(), 'dropwarden-cdk-cli-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

it('synthesizes the stack offline with the pinned CLI', async () => {
  const cli = join(projectRoot, 'node_modules', 'aws-cdk', 'bin', 'cdk');
  await promisify(execFile)(process.execPath, [cli, 'synth', '--quiet', '--no-notices', '--output', outdir, '-c', 'dropwarden:domain=apps.example.com'], {
    cwd: projectRoot,
    env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: '1', CDK_DISABLE_VERSION_CHECK: '1' },
    maxBuffer: 64 << 20,
  });
  const template = JSON.parse(readFileSync(join(outdir, 'Dropwarden.template.json'), 'utf8'));
  expect(Object.keys(template.Outputs)).toEqual(expect.arrayContaining(Object.values(OUTPUT)));
  expect(existsSync(join(outdir, 'Dropwarden.assets.json'))).toBe(true);
}, 120_000);
