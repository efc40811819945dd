import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { prepareWorkRoot } from '../../functions/stager/workspace.ts';

const dir = mkdtempSync(join(tmpdir(), 'dropwarden-workspace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('creates the work root once and marks it as a top directory where the filesystem allows', async () => {
  const root = join(dir, 'a', 'staging');
  const first = prepareWorkRoot(root);
  expect(prepareWorkRoot(root)).toBe(first);
  const spread = await first;
  expect(statSync(root).isDirectory()).toBe(true);
  if (spread) expect(execFileSync('lsattr', ['-d', root], { encoding: 'utf8' })).toMatch(/^\S*T\S*\s/);
});
