/** The rules for a zip entry's name: a relative path inside the destination, within the length limits. */
import { fail } from './errors.ts';
import type { UnpackLimits } from './limits.ts';

/** Turns an entry name into a safe relative path, or says precisely why it is not one. */
export function safeEntryPath(name: string, limits: Pick<UnpackLimits, 'maxPathBytes' | 'maxNameBytes'>): string {
  const shown = JSON.stringify(name);
  if (name.length === 0) throw fail('an entry has an empty name');
  if (name.includes('\0')) throw fail(`entry ${shown} has a NUL byte in its name`);
  if (Buffer.byteLength(name) > limits.maxPathBytes) {
    throw fail(`entry name is longer than ${limits.maxPathBytes} bytes: ${shown.slice(0, 80)}…`);
  }
  if (name.includes('\\')) throw fail(`entry ${shown} contains a backslash: zip entry names must use "/"`);
  if (/^[A-Za-z]:/.test(name)) throw fail(`entry ${shown} has a drive letter: entries must be relative paths`);
  if (name.startsWith('/')) throw fail(`entry ${shown} is an absolute path: entries must be relative paths`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw fail(`entry escapes the app root: ${name}`);
  for (const p of parts) {
    if (Buffer.byteLength(p) > limits.maxNameBytes) {
      throw fail(`entry ${shown} has a path component longer than ${limits.maxNameBytes} bytes`);
    }
  }
  return parts.join('/');
}
