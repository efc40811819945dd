/**
 * Lambda's reset between invocations (functions/stager/environment-reset.ts, DESIGN §8), for real
 * in a pid namespace of its own (as root): what an app's programs left running is killed, a
 * setsid'd double-forked survivor included, `/tmp` is emptied, and what was running before the
 * runtime started (an extension) and the runtime's own lineage are spared.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';

const RUNNER = new URL('../support/reset-runner.ts', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'dw-reset-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('after a batch: kills every process started since the runtime, spares older ones and its lineage, empties /tmp and makes the work root again', () => {
  const tmp = join(dir, 'tmp');
  // bash is the namespace's init (the runtime's ancestor); the "extension" starts before the runtime (node).
  const script = `mkdir -p ${tmp}; (exec -a dw-extension sleep 300) & sleep 0.2; ${process.execPath} ${RUNNER} ${tmp}; kill -0 $! && echo extension-alive`;
  const run = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'bash', '-c', script], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'INFO' },
  });
  expect(run.status, run.stderr).toBe(0);
  const out = run.stdout.trim().split('\n');
  // The stager's logger writes warnings to stderr.
  const lines = [...out, ...run.stderr.trim().split('\n')].map((l) => JSON.parse(l.startsWith('{') ? l : '{}'));
  const report = lines.find((l) => 'before' in l) as { before: string[]; response: unknown; batchDone: boolean; after: string[]; tmp: string[] };
  const logged = lines.find((l) => l.message?.startsWith('Killed processes'));
  expect(report.before).toEqual(expect.arrayContaining(['dw-survivor', 'dw-detached', 'dw-extension']));
  expect(report.response).toEqual({ batchItemFailures: [] });
  expect(report.batchDone).toBe(true);
  expect(logged).toMatchObject({ level: 'WARN', killed: 2, removed: 3 });
  expect(report.after).not.toContain('dw-survivor');
  expect(report.after).not.toContain('dw-detached');
  expect(report.after).toContain('dw-extension');
  expect(report.after).toContain('bash');
  // Emptied, then the work root made again for the next batch.
  expect(report.tmp).toEqual(['dropwarden-staging']);
  expect(out.at(-1)).toBe('extension-alive');
});
