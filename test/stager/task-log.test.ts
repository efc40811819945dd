import { expect, it } from 'vitest';
import { TaskLog } from '../../functions/stager/task-log.ts';

it('stamps each line v1-style in UTC and splits multi-line messages', () => {
  const log = new TaskLog();
  const seen: string[] = [];
  log.onLine((l) => seen.push(l));
  log.info('Downloading application', new Date('2026-11-23T10:12:01.500Z'));
  log.info('a\nb\n', new Date('2026-11-23T10:12:02Z'));
  expect(log.toString()).toBe('[2026-11-23 10:12:01] Downloading application\n[2026-11-23 10:12:02] a\n[2026-11-23 10:12:02] b\n');
  expect(seen).toHaveLength(3);
  expect(log.messages()).toBe('Downloading application\na\nb\n');
});

it('keeps the tail when the log outgrows its budget, and says so', () => {
  const log = new TaskLog(200);
  for (let i = 0; i < 50; i++) log.info(`line ${i}`);
  const text = log.toString();
  expect(text.startsWith('[… earlier lines dropped')).toBe(true);
  expect(text).toContain('line 49');
  expect(text).not.toContain('line 0\n');
  expect(Buffer.byteLength(text)).toBeLessThan(300);
});
