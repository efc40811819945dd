/**
 * On Lambda, where the namespaces sandbox cannot run (DESIGN §8), an execution environment is
 * reused for the next invocation, which may stage another tenant's app. After each batch,
 * `resetExecutionEnvironment` kills every process started since this one (the app's install
 * scripts and whatever they left running, `setsid` and double-forked ones included) and empties
 * `/tmp`. It spares this process, its ancestors (Lambda's runtime) and every process older than
 * it (extensions start before the runtime does).
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { prepareWorkRoot } from './work-root.ts';

export interface ResetOutcome {
  /** Processes killed. */
  killed: number;
  /** Entries removed from the temporary directory. */
  removed: number;
}

/** A process as /proc/<pid>/stat says: its parent, state and start time (clock ticks since boot). */
interface ProcStat {
  ppid: number;
  state: string;
  startTicks: number;
}

async function procStat(pid: number | 'self'): Promise<ProcStat | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // gone
  }
  // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0], ppid: Number(fields[1]), startTicks: Number(fields[19]) };
}

async function ancestors(): Promise<Set<number>> {
  const lineage = new Set<number>([process.pid]);
  let pid = process.ppid;
  while (pid > 0 && !lineage.has(pid)) {
    lineage.add(pid);
    pid = (await procStat(pid))?.ppid ?? 0;
  }
  return lineage;
}

const ROUNDS = 10;

/** Kills every process started since this one, outside its lineage; again until a pass finds none (a process may fork meanwhile). */
export async function killProcessesSinceStart(): Promise<number> {
  const own = await procStat('self');
  if (!own) throw new Error('cannot read /proc/self/stat: the execution environment cannot be reset');
  const spared = await ancestors();
  let killed = 0;
  for (let round = 0; round < ROUNDS; round++) {
    let found = 0;
    for (const name of await readdir('/proc')) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || spared.has(pid)) continue;
      const stat = await procStat(pid);
      if (!stat || stat.state === 'Z' || stat.startTicks < own.startTicks) continue;
      try {
        process.kill(pid, 'SIGKILL');
        found++;
      } catch {
        // gone already, or not ours to signal
      }
    }
    killed += found;
    if (found === 0) return killed;
    await new Promise((r) => setTimeout(r, 20));
  }
  return killed;
}

/** Empties `dir` (the entries, not the directory). */
export async function emptyDir(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  await Promise.all(names.map((n) => rm(join(dir, n), { recursive: true, force: true })));
  return names.length;
}

/** Kills first, so that nothing is writing while `/tmp` is emptied. */
export async function resetExecutionEnvironment(opts: { tmpDir: string }): Promise<ResetOutcome> {
  const killed = await killProcessesSinceStart();
  const removed = await emptyDir(opts.tmpDir);
  return { killed, removed };
}

/**
 * The reset after a build (the builder function) or a batch (the stager on Lambda without a
 * builder), with the work root made again; an environment that cannot be reset is ended, so
 * that Lambda gives the next invocation a fresh one.
 */
export async function resetOrEnd(opts: {
  tmpDir: string;
  workRoot: string;
  log: { warn(message: string, fields: Record<string, unknown>): void; error(message: string, fields: Record<string, unknown>): void };
}): Promise<void> {
  try {
    const outcome = await resetExecutionEnvironment({ tmpDir: opts.tmpDir });
    await prepareWorkRoot(opts.workRoot);
    if (outcome.killed) opts.log.warn('Killed processes that the staging programs left running', { ...outcome });
  } catch (err) {
    opts.log.error('Could not reset the execution environment: ending it, so that the next invocation gets a fresh one', { error: (err as Error).message });
    process.exit(1);
  }
}
