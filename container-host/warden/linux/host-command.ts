import { spawn } from 'node:child_process';
import { HostError } from './errors.ts';

export interface CommandResult {
  code: number;
  stdout: Buffer;
  stderr: Buffer;
}

/** Runs a host command to completion (`input` is its stdin); rejects with a HostError naming `step` unless it exits 0. */
export function runHost(step: string, argv: string[], opts: { env?: NodeJS.ProcessEnv; allowFailure?: boolean; input?: string } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env: opts.env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (opts.input !== undefined) child.stdin!.on('error', () => undefined).end(opts.input);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new HostError(step, `cannot run ${argv[0]}: ${e.message}`)));
    child.on('close', (code, signal) => {
      const result = { code: code ?? 128, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
      if (result.code !== 0 && !opts.allowFailure) {
        reject(new HostError(step, `${argv[0]} exited ${code ?? signal}: ${result.stderr.toString()}`));
      } else resolve(result);
    });
  });
}
