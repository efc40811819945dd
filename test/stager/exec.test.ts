import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { alive, until } from '../support/processes.ts';
import { execInGroup } from '../../functions/stager/exec.ts';
import { ExecError, PluginError } from '../../plugins/api/types.ts';
import { StagingTimeoutError } from '../../functions/stager/errors.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

it('streams each output line of the program into the log', async () => {
  const lines: string[] = [];
  await execInGroup('bash', ['-c', 'echo one; echo two >&2; printf three'], {
    baseEnv: process.env as Record<string, string>,
    log: (l) => lines.push(l),
    signal: new AbortController().signal,
  });
  expect(lines.sort()).toEqual(['one', 'three', 'two']);
});

it('rejects with a PluginError naming the program and its status', async () => {
  const run = execInGroup('bash', ['-c', 'exit 3'], { baseEnv: process.env as Record<string, string>, log: () => {}, signal: new AbortController().signal });
  await expect(run).rejects.toBeInstanceOf(PluginError);
  await expect(run).rejects.toThrow('bash -c exit 3 exited with status 3');
});

it('rejects with a typed ExecError: the command, its exit status or its signal', async () => {
  const exited = await execInGroup('bash', ['-c', 'exit 3'], {
    baseEnv: process.env as Record<string, string>,
    log: () => {},
    signal: new AbortController().signal,
  }).catch((e) => e);
  expect(exited).toBeInstanceOf(ExecError);
  expect(exited).toMatchObject({ command: 'bash -c exit 3', exitCode: 3, signal: null, how: 'exited with status 3' });
  const killed = await execInGroup('bash', ['-c', 'kill -TERM $$'], {
    baseEnv: process.env as Record<string, string>,
    log: () => {},
    signal: new AbortController().signal,
  }).catch((e) => e);
  expect(killed).toMatchObject({ command: 'bash -c kill -TERM $$', exitCode: null, signal: 'SIGTERM', message: 'bash -c kill -TERM $$ was killed by SIGTERM' });
});

it('kills the whole process group, grandchildren included, when the deadline passes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dw-exec-'));
  dirs.push(dir);
  const deadline = new AbortController();
  let started!: () => void;
  const ready = new Promise<void>((r) => (started = r));
  const run = execInGroup('bash', ['-c', `sleep 60 & echo $! > ${dir}/grandchild; echo $$ > ${dir}/child; echo ready; wait`], {
    baseEnv: process.env as Record<string, string>,
    log: (line) => line === 'ready' && started(),
    signal: deadline.signal,
  });
  await ready; // both pid files are written
  const grandchild = Number(readFileSync(join(dir, 'grandchild'), 'utf8'));
  const child = Number(readFileSync(join(dir, 'child'), 'utf8'));
  expect(alive(grandchild)).toBe(true);
  deadline.abort(new StagingTimeoutError(1));
  await expect(run).rejects.toBeInstanceOf(StagingTimeoutError);
  // SIGKILL to the group is sent, not yet reaped: wait for both to be gone (a safety stop of 15 s).
  await until('the child and the grandchild gone', () => (!alive(child) && !alive(grandchild) ? true : undefined));
});
