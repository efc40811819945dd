/**
 * The embedded stack in the foreground (`dropwarden up`): the S3+SQS emulator, the stager
 * worker, wardend, the agent and the router, each its own process. `start` resolves once every part
 * answers; `stop` stops them all and leaves no container, iptables rule or cgroup behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WardenClient } from '../container-host/warden/client/client.ts';
import { SETTING } from '../contracts/settings.ts';
import { type StackConfig, stackConfigToEnv } from '../lib/stack-config.ts';
import { provisionStack } from './provision.ts';
import { claimSlot, type LocalSlot } from './slots.ts';
import { type LocalStackState, readRunningStack, readStaleStack, removeState, stateDir, writeState } from './state.ts';
import {
  depotHandles,
  destroyAllContainers,
  destroyFromDepot,
  previousSlot,
  removeHostSetup,
  wardendLayout,
  type WardendLayout,
  writeWardendConfig,
} from './wardend-part.ts';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const CLI = here('../bin/dropwarden.js');
const RUN_ROUTER = here('./router/run-router.ts');

/**
 * The stager streams ~100 MB through short-lived buffers per staging. glibc's defaults keep
 * freed memory: its mmap threshold grows with the first big free (so later buffers come from
 * arenas that are never trimmed), and each libuv thread doing inflate/deflate gets an arena.
 */
export const LEAN_MALLOC = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' };
/**
 * 1 MiB semi-spaces collect those buffers before they pile up (a 1 GB staging peaks at 188 MiB,
 * 203 MiB with 2 MiB; 4 MiB semi-spaces add ~35 MiB at 100 MB for no measurable speed);
 * --expose-gc lets the task collect between phases; --liftoff-only keeps Node's type stripper
 * (WebAssembly) baseline-compiled, as for wardend: 14 MiB less RSS (the deployed function is a
 * bundle and has no type stripper).
 */
export const STAGER_NODE_FLAGS = ['--max-semi-space-size=1', '--expose-gc', '--liftoff-only'];

const PART_READY_MS = 60_000;

export interface UpOptions {
  /** The environment `up` was started with: the parts inherit it, and it names the state dir. */
  env: NodeJS.ProcessEnv;
  port?: number;
  region?: string;
  dataDir?: string;
  stagingVisibilitySeconds?: number;
  /** Also run wardend and the agent (default: true; the stager benchmarks leave them out). */
  containers?: boolean;
  /** Extra environment for the agent (e.g. DROPWARDEN_MAX_RESTARTS). */
  agentEnv?: Record<string, string>;
  /** Where the parts' own output goes (default: this process's stderr, prefixed). */
  out?: (part: string, line: string) => void;
}

/** What the running stack's container side is reached by. */
export interface ContainerParts {
  wardenSocket: string;
  /** host:port of the agent's HTTP API. */
  agentApi: string;
  agentDir: string;
  slot: Omit<LocalSlot, 'release'>;
}

/** The router part (DESIGN §7): its public port, its admin API, the route template. */
export interface RouterPart {
  port: number;
  admin: string;
  routes: string;
}

export class PartError extends Error {
  override name = 'PartError';
}

/** Another `up` runs with the same state dir (its data dir, depot and socket): nothing was started. */
export class AlreadyRunningError extends Error {
  override name = 'AlreadyRunningError';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isOurPart(pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(CLI) || cmdline.includes(here('./run-emulator.ts')) || cmdline.includes(RUN_ROUTER);
  } catch {
    return false;
  }
}

/** Stops the parts an `up` that was killed left running (SIGTERM, then SIGKILL after 10 s). */
async function stopLeftParts(state: LocalStackState | undefined, say: (line: string) => void): Promise<void> {
  const left = Object.entries(state?.parts ?? {}).filter(([, pid]) => isOurPart(pid));
  for (const [part, pid] of left) {
    say(`stopping the ${part} (pid ${pid}) that an earlier up, killed, left running`);
    process.kill(pid, 'SIGTERM');
  }
  for (const [, pid] of left) {
    for (let waited = 0; isOurPart(pid) && waited < 10_000; waited += 100) await sleep(100);
    if (isOurPart(pid)) process.kill(pid, 'SIGKILL');
  }
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
      .once('error', reject)
      .listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
  });

export class LocalStack {
  config?: StackConfig;
  containers?: ContainerParts;
  router?: RouterPart;
  private readonly children = new Map<string, ChildProcess>();
  private stopping = false;
  private dataDir?: string;
  private stateDir = '';
  private readonly opts: UpOptions;
  private slot?: LocalSlot;
  private layout?: WardendLayout;
  private wardendConfig?: Record<string, unknown>;
  /** Called when a part exits on its own (the stack is no longer whole). */
  onPartExit?: (part: string, code: number | null) => void;

  constructor(opts: UpOptions) {
    this.opts = opts;
  }

  private out(part: string, line: string): void {
    (this.opts.out ?? ((p, l) => process.stderr.write(`[${p}] ${l}\n`)))(part, line);
  }

  private spawnPart(part: string, args: string[], env: NodeJS.ProcessEnv = {}, nodeFlags: string[] = []): ChildProcess {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', ...nodeFlags, ...args], {
      env: { ...this.opts.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: a Ctrl-C at the terminal reaches `up` only, which then stops
      // the parts in order (apps, agent, containers, wardend, worker, emulator).
      detached: true,
    });
    this.children.set(part, child);
    createInterface({ input: child.stderr! }).on('line', (line) => this.out(part, line));
    child.once('exit', (code) => {
      this.children.delete(part);
      // The router is started again where it exited (startRouter); any other part leaves the stack broken.
      if (!this.stopping && part !== 'router') this.onPartExit?.(part, code);
    });
    return child;
  }

  /** Resolves with the first stdout line `isReady` accepts; other lines go to `out`. */
  private readyLine(part: string, child: ChildProcess, isReady: (line: string) => boolean): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      let ready = false;
      const timer = setTimeout(() => reject(new PartError(`the ${part} did not say it was ready within ${PART_READY_MS / 1000} s`)), PART_READY_MS);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (!ready && isReady(line)) {
          ready = true;
          clearTimeout(timer);
          resolve(line);
        } else {
          this.out(part, line);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (!ready) reject(new PartError(`the ${part} exited (${code ?? signal}) before it was ready; its output is above`));
      });
    });
  }

  async start(): Promise<StackConfig> {
    const region = this.opts.region ?? 'us-east-1';
    const state = stateDir(this.opts.env);
    this.stateDir = state;
    const dataDir = this.opts.dataDir ?? join(state, 'data');
    this.dataDir = dataDir;
    mkdirSync(dataDir, { recursive: true });
    const containers = this.opts.containers ?? true;
    const running = readRunningStack(state);
    if (running) {
      throw new AlreadyRunningError(
        `a dropwarden up is already running with the state dir ${state} (pid ${running.pid}): stop it first, or give this one a DROPWARDEN_STATE_DIR of its own`,
      );
    }
    // Its containers stay: the new wardend restores them from the depot and the agent adopts them.
    await stopLeftParts(readStaleStack(state), (line) => this.out('up', line));

    // wardend needs nothing of the emulator: it starts alongside.
    const wardendReady = containers ? this.startWardend(dataDir, state) : undefined;
    wardendReady?.catch(() => {}); // awaited below; a failure here must not go unhandled meanwhile
    // Nor does the router.
    const routerReady = containers ? this.startRouter() : undefined;
    routerReady?.catch(() => {});

    const emulator = this.spawnPart('emulator', [
      here('./run-emulator.ts'),
      '--port',
      String(this.opts.port ?? 4566),
      '--s3-dir',
      join(dataDir, 's3'),
      '--region',
      region,
    ]);
    const endpoint = (JSON.parse(await this.readyLine('S3+SQS emulator', emulator, (l) => l.includes('"endpoint"'))) as { endpoint: string }).endpoint;
    const config: StackConfig = await provisionStack({ region, endpoint, stagingVisibilitySeconds: this.opts.stagingVisibilitySeconds });
    if (routerReady) config.routes = (await routerReady).routes;
    this.config = config;

    const worker = this.spawnPart(
      'stager',
      [CLI, 'stager-worker'],
      { ...stackConfigToEnv(config), [SETTING.workDir]: join(dataDir, 'staging'), ...LEAN_MALLOC },
      STAGER_NODE_FLAGS,
    );
    const workerReady = this.readyLine('stager worker', worker, (l) => l.includes('"ready"'));
    if (containers) {
      await wardendReady;
      await Promise.all([workerReady, this.startAgent(config, dataDir)]);
    } else {
      await workerReady;
    }
    this.saveState(dataDir);
    return config;
  }

  private saveState(dataDir: string): void {
    const config = this.config!;
    writeState(this.stateDir, {
      pid: process.pid,
      started_at: new Date().toISOString(),
      data_dir: dataDir,
      config,
      warden_socket: this.containers?.wardenSocket,
      agent_api: this.containers?.agentApi,
      agent_dir: this.containers?.agentDir,
      router_admin: this.router?.admin,
      parts: Object.fromEntries([...this.children].map(([part, child]) => [part, child.pid!])),
    });
  }

  /**
   * The router, on 8080 or the next free port (DROPWARDEN_ROUTER_PORT), its admin API on a
   * free loopback port. One that exits is started again on the same ports: the agents re-send
   * their routes every few seconds, so it learns them again (DESIGN §7).
   */
  private async startRouter(again?: RouterPart): Promise<RouterPart> {
    const admin = again?.admin ?? `127.0.0.1:${await freePort()}`;
    const env: NodeJS.ProcessEnv = { [SETTING.routerAdmin]: admin, ...(again && { [SETTING.routerPort]: String(again.port) }) };
    const child = this.spawnPart('router', [RUN_ROUTER, ...(again ? ['--exact-port'] : [])], env);
    const ready = JSON.parse(await this.readyLine('router', child, (l) => l.includes('"ready"'))) as RouterPart;
    this.router = { port: ready.port, admin: ready.admin, routes: ready.routes };
    child.once('exit', (code) => {
      if (this.stopping) return;
      this.out('up', `the router exited (${code}); starting it again on port ${ready.port}`);
      this.startRouter(this.router).then(
        () => this.config && this.saveState(this.dataDir!),
        (err: Error) => {
          this.out('up', `the router could not be started again: ${err.message}`);
          this.onPartExit?.('router', code);
        },
      );
    });
    return this.router;
  }

  private async startWardend(dataDir: string, state: string): Promise<void> {
    const layout = wardendLayout(dataDir, state);
    this.layout = layout;
    this.slot = claimSlot(previousSlot(layout));
    this.wardendConfig = writeWardendConfig(layout, this.slot);
    const wardend = this.spawnPart('wardend', [CLI, 'wardend', '--config', layout.configFile]);
    await this.readyLine('wardend', wardend, (l) => l.includes('wardend ready'));
    const client = await WardenClient.connect(layout.socket);
    try {
      await client.call('Ping', {});
    } finally {
      client.close();
    }
  }

  private async startAgent(config: StackConfig, dataDir: string): Promise<void> {
    const agentApi = `127.0.0.1:${await freePort()}`;
    const agentDir = join(dataDir, 'agent');
    const agent = this.spawnPart('agent', [CLI, 'agent'], {
      ...stackConfigToEnv(config),
      [SETTING.wardenSocket]: this.layout!.socket,
      [SETTING.agentDir]: agentDir,
      [SETTING.agentApi]: agentApi,
      [SETTING.agentAdvertiseHost]: '127.0.0.1',
      ...(this.router && { [SETTING.routerAdmin]: this.router.admin }),
      ...this.opts.agentEnv,
    });
    await this.readyLine('agent', agent, (l) => l.includes('"ready"'));
    const health = await fetch(`http://${agentApi}/v1/healthz`).catch((err: Error) => err);
    if (health instanceof Error || !health.ok) {
      throw new PartError(`the agent said it was ready but its API at ${agentApi} does not answer (${health instanceof Error ? health.message : health.status})`);
    }
    const { release: _release, ...slot } = this.slot!;
    this.containers = { wardenSocket: this.layout!.socket, agentApi, agentDir, slot };
  }

  private async stopPart(part: string): Promise<void> {
    const child = this.children.get(part);
    if (!child) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /**
   * Stops every part: the agent first (nothing restarts what is destroyed next), every
   * container through wardend, wardend, then the worker (no staging is cut off by a vanished
   * emulator) and the emulator. Throws, after stopping everything, if anything was left.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.stateDir) removeState(this.stateDir);
    const problems: string[] = [];
    await this.stopPart('agent');
    if (this.layout && this.slot) {
      if (this.children.has('wardend')) {
        await destroyAllContainers(this.layout.socket).catch((err: Error) => problems.push(err.message));
      }
      await this.stopPart('wardend');
      if (depotHandles(this.layout).length) {
        await destroyFromDepot(this.wardendConfig!).catch((err: Error) => problems.push(`destroying what wardend left: ${err.message}`));
      }
      // The host setup (global chains, cgroup parent) and the slot are only given up with no
      // container left: the ones left still use them, and the next `up` destroys them from the depot.
      if (depotHandles(this.layout).length === 0) {
        await removeHostSetup(this.slot).catch((err: Error) => problems.push(`removing iptables chains: ${err.message}`));
        this.slot.release();
      }
    }
    await this.stopPart('router');
    await this.stopPart('stager');
    await this.stopPart('emulator');
    const left = this.layout ? depotHandles(this.layout) : [];
    if (left.length) problems.push(`containers left in ${this.layout!.depotDir}: ${left.join(', ')}`);
    if (problems.length) throw new PartError(`the stack stopped, but: ${problems.join('; ')}`);
  }

  /** A part's pid, for tests that kill parts. */
  pidOf(part: string): number | undefined {
    return this.children.get(part)?.pid;
  }
}
