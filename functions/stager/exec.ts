/**
 * Runs a plugin's program in its own process group, streaming its output into the task log;
 * when the staging deadline passes, the whole group is killed, not just the direct child.
 */
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { ExecError, type ExecOptions, PluginError, type ProbeOptions, type ProbeResult } from '../../plugins/api/types.ts';

import { chownTree, ensureSandboxFilters, SANDBOX_BASE_ENV, type SandboxOptions, sandboxCommand, sandboxSetupEnv, sandboxUid } from './sandbox.ts';

/**
 * The stager's own installation (its package, with the npm it ships and the buildpacks, and its
 * node), kept visible read-only in the sandbox: it may live under /tmp, which the sandbox hides.
 */
const STAGER_INSTALL = [fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, ''), dirname(process.execPath)];

/**
 * A plugin's `ctx.exec`: the program is app code, so it runs in the sandbox (DESIGN §8) with only
 * the environment the plugin names.
 */
export async function execUntrusted(
  file: string,
  args: string[],
  options: ExecOptions & { log: (line: string) => void; signal: AbortSignal; sandbox: SandboxOptions },
): Promise<void> {
  options.signal.throwIfAborted();
  if (options.sandbox.mode === 'env-only') {
    return execInGroup(file, args, {
      cwd: options.cwd,
      log: options.log,
      signal: options.signal,
      baseEnv: { ...SANDBOX_BASE_ENV },
      env: options.env,
      pathPrefix: options.pathPrefix,
    });
  }
  await ensureSandboxFilters();
  // One uid for the whole staging: what one program wrote, the next may change, so each
  // writable tree is handed over once (a droplet of 10 000 files is not walked per program).
  const uid = options.sandbox.uid ?? sandboxUid();
  const writable = [...new Set([...options.sandbox.writable, ...(options.writable ?? [])])];
  for (const dir of writable) {
    if (options.sandbox.handedOver?.has(dir)) continue;
    await chownTree(dir, uid);
    options.sandbox.handedOver?.add(dir);
  }
  const sandbox = { keep: [...STAGER_INSTALL, ...(options.readable ?? [])], ...options.sandbox, writable };
  const cmd = sandboxCommand(file, args, uid, sandbox);
  return execInGroup(cmd.file, cmd.args, {
    cwd: options.cwd,
    log: options.log,
    signal: options.signal,
    baseEnv: { ...SANDBOX_BASE_ENV, ...sandboxSetupEnv(sandbox) },
    env: options.env,
    pathPrefix: options.pathPrefix,
    commandLine: [file, ...args].join(' '),
  });
}

const PROBE_STDOUT_CHARS = 4096;

/**
 * A plugin's `probe` (a buildpack's bin/detect): `execUntrusted` with stderr dropped and
 * stdout kept rather than logged. Its own timeout ends it quietly; the staging deadline does not.
 */
export async function probeUntrusted(file: string, args: string[], options: ProbeOptions & { signal: AbortSignal; sandbox: SandboxOptions }): Promise<ProbeResult> {
  const { timeoutMs, signal, ...rest } = options;
  let stdout = '';
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    // bash execs the program, so its exit status is the program's own.
    await execUntrusted('bash', ['-c', 'exec "$@" 2>/dev/null', 'bash', file, ...args], {
      ...rest,
      signal: AbortSignal.any([signal, timeout]),
      log: (line) => {
        if (stdout.length < PROBE_STDOUT_CHARS) stdout += `${line}\n`;
      },
    });
    return { exitCode: 0, stdout: stdout.slice(0, PROBE_STDOUT_CHARS) };
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (err instanceof ExecError) return { exitCode: err.exitCode, stdout: stdout.slice(0, PROBE_STDOUT_CHARS) };
    if (timeout.aborted || err instanceof PluginError) return { exitCode: null, stdout: '' };
    throw err;
  }
}

/** `prefix` directories first, then the PATH the environment already has. */
function withPath(env: Record<string, string>, prefix: readonly string[] | undefined): Record<string, string> {
  if (!prefix?.length) return env;
  return { ...env, PATH: [...prefix, env.PATH ?? ''].filter(Boolean).join(':') };
}

export function execInGroup(
  file: string,
  args: string[],
  options: ExecOptions & {
    log: (line: string) => void;
    signal: AbortSignal;
    /** The environment the program starts from (SANDBOX_BASE_ENV, and the sandbox's own set-up). */
    baseEnv: Readonly<Record<string, string>>;
    /** The command as errors name it (by default `file args`). */
    commandLine?: string;
  },
): Promise<void> {
  options.signal.throwIfAborted();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: withPath({ ...options.baseEnv, ...options.env }, options.pathPrefix),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const killGroup = () => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // the group is already gone
        }
      }
    };
    options.signal.addEventListener('abort', killGroup, { once: true });
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => options.log(line));
    }
    child.once('error', (err) => {
      options.signal.removeEventListener('abort', killGroup);
      reject(new PluginError(`could not run ${file}: ${err.message}`));
    });
    child.once('close', (code, sig) => {
      options.signal.removeEventListener('abort', killGroup);
      killGroup(); // leave no stray grandchildren behind
      if (options.signal.aborted) return reject(options.signal.reason);
      if (code === 0) return resolvePromise();
      reject(new ExecError(options.commandLine ?? [file, ...args].join(' '), code, sig));
    });
  });
}
