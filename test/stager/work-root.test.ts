import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { prepareWorkRoot } from '../../functions/stager/work-root.ts';

it('removes the workspaces a cut-off task left behind, and nothing else in a shared work dir', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dw-work-root-'));
  try {
    const left = randomUUID();
    mkdirSync(join(dir, left, 'droplet', 'app'), { recursive: true });
    writeFileSync(join(dir, left, 'app.zip'), 'x');
    mkdirSync(join(dir, 'someone-elses'));
    writeFileSync(join(dir, 'notes.txt'), 'keep me');
    await prepareWorkRoot(dir);
    expect(readdirSync(dir).sort()).toEqual(['notes.txt', 'someone-elses']);
    await prepareWorkRoot(join(dir, 'new', 'root')); // made when missing
    expect(readdirSync(join(dir, 'new', 'root'))).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
