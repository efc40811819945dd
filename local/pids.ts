import { readFileSync } from 'node:fs';

/**
 * True while the process exists and is not a zombie: a killed `up` whose parent is gone may
 * stay a zombie where pid 1 does not reap (a container's init), yet signal 0 still reaches it.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
  } catch {
    return false;
  }
}
