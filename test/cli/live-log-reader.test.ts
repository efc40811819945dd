import { expect, it } from 'vitest';
import { LiveLogReader } from '../../cli/staging-client.ts';

it('shows each new line once, lines with the same text and second included', () => {
  const r = new LiveLogReader();
  const a = '[2026-11-23 10:00:00] Installing\n';
  expect(r.next(a)).toBe(a);
  expect(r.next(a + a)).toBe(a);
  expect(r.next(a + a + '[2026-11-23 10:00:01] Done\n')).toBe('[2026-11-23 10:00:01] Done\n');
  expect(r.next(a + a + '[2026-11-23 10:00:01] Done\n')).toBe('');
});

it('once the log has dropped its head, goes on after the last line shown', () => {
  const r = new LiveLogReader();
  expect(r.next('l1\nl2\nl3\n')).toBe('l1\nl2\nl3\n');
  expect(r.next('[… earlier lines dropped to fit the result message]\nl3\nl4\n')).toBe('l4\n');
});
