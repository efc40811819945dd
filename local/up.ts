/**
 * The embedded stack in the foreground (`dropwarden up`): the S3+SQS emulator and the stager
 * worker, each its own process; later issues add wardend and the agent. Prints `ready` once
 * every part answers; SIGINT/SIGTERM stops them all.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type StackConfig, stackConfigToEnv } from '../lib/stack-config.ts';
import { provisionStack } from './provision.ts';
import { removeState, stateDir, writeState } from './state.ts';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const CLI = here('../bin/dropwarden.js');

/**
 * The stager streams ~100 MB through short-lived buffers per staging. glibc's defaults keep
 * freed memory: its mmap threshold grows with the first big free (so later buffers come from
 * arenas that are never trimmed), and each libuv thread doing inflate/deflate gets an arena.
 */
export const LEAN_MALLOC = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' };
/**
 * 1 MiB semi-spaces collect those buffers before they pile up (a 1 GB staging peaks at 188 MiB,
 * 203 MiB with 2 MiB); --expose-gc lets the task collect between phases.
 */
export const STAGER_NODE_FLAGS = ['--max-semi-space-size=1', '--expose-gc'];

export interface UpOptions {
  port?: number;
  region?: string;
  dataDir?: string;
  stagingVisibilitySeconds?: number;
  /** Where the parts' own output goes (default: this process's stderr, prefixed). */
  out?: (part: string, line: string) => void;
}

export class LocalStack {
  config?: StackConfig;
  private readonly children = new Map<string, ChildProcess>();
  private stopping = false;
  private readonly opts: UpOptions;
  /** Called when a part exits on its own (the stack is no longer whole). */
  onPartExit?: (part: string, code: number | null) => void;

  constructor(opts: UpOptions = {}) {
    this.opts = opts;
  }

  private spawnPart(part: string, args: string[], env: NodeJS.ProcessEnv = {}, nodeFlags: string[] = []): ChildProcess {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', ...nodeFlags, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.set(part, child);
    const out = this.opts.out ?? ((p, line) => process.stderr.write(`[${p}] ${line}\n`));
    createInterface({ input: child.stderr! }).on('line', (line) => out(part, line));
    child.once('exit', (code) => {
      this.children.delete(part);
      if (!this.stopping) this.onPartExit?.(part, code);
    });
    return child;
  }

  async start(): Promise<StackConfig> {
    const region = this.opts.region ?? 'us-east-1';
    const dataDir = this.opts.dataDir ?? join(stateDir(), 'data');
    mkdirSync(dataDir, { recursive: true });

    const emulator = this.spawnPart('emulator', [
      here('./run-emulator.ts'), '--port', String(this.opts.port ?? 4566), '--s3-dir', join(dataDir, 's3'), '--region', region,
    ]);
    const endpoint = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: emulator.stdout! });
      lines.once('line', (line) => resolve((JSON.parse(line) as { endpoint: string }).endpoint));
      emulator.once('exit', (code) => reject(new Error(`the S3+SQS emulator exited (status ${code}) before it was ready`)));
    });
    const config = await provisionStack({ region, endpoint, stagingVisibilitySeconds: this.opts.stagingVisibilitySeconds });
    this.config = config;

    const worker = this.spawnPart(
      'stager',
      [CLI, 'stager-worker'],
      {
        ...stackConfigToEnv(config),
        DROPWARDEN_WORK_DIR: join(dataDir, 'staging'),
        ...LEAN_MALLOC,
      },
      STAGER_NODE_FLAGS,
    );
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: worker.stdout! }).on('line', (line) => {
        if (line.includes('"ready"')) resolve();
        else (this.opts.out ?? ((p, l) => process.stderr.write(`[${p}] ${l}\n`)))('stager', line);
      });
      worker.once('exit', (code) => reject(new Error(`the stager worker exited (status ${code}) before it was ready`)));
    });
    writeState({ pid: process.pid, started_at: new Date().toISOString(), data_dir: dataDir, config });
    return config;
  }

  /** Stops every part (worker first, so no staging is cut off by a vanished emulator). */
  async stop(): Promise<void> {
    this.stopping = true;
    removeState();
    for (const part of ['stager', 'emulator']) {
      const child = this.children.get(part);
      if (!child) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  }

  /** A part's pid, for tests that kill parts. */
  pidOf(part: string): number | undefined {
    return this.children.get(part)?.pid;
  }
}
