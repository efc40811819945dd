import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WardenClient } from '../../../container-host/warden/client/client.ts';
import { createLinuxWardenService, type LinuxWardenConfig } from '../../../container-host/warden/linux/index.ts';
import { cgroupParentDirs } from '../linux/helpers.ts';

const BIN = join(import.meta.dirname, '..', '..', '..', 'bin', 'dropwarden.js');

/**
 * A real `dropwarden wardend` as a child process, with its own depot, rootfs dir, socket and
 * cgroup parent. start/kill/drain can be repeated on the same depot (restart tests); cleanup
 * destroys whatever containers are left, even when a test failed half-way.
 */
export class WardendProcess {
  readonly dir: string;
  readonly socket: string;
  readonly cgroupParent: string;
  readonly configFile: string;
  /** The Linux backend's part of the config (and whatever `extra` added). */
  readonly backend: { depotDir: string; rootfsDir: string; cgroupParent: string } & Record<string, unknown>;
  child?: ChildProcess;
  stderr = '';
  readonly #clients: WardenClient[] = [];

  constructor(name: string, extra: Record<string, unknown> = {}) {
    this.dir = mkdtempSync(join(tmpdir(), `dw-${name}-`));
    this.socket = join(this.dir, 'warden.sock');
    this.cgroupParent = `dropwarden-test-${name}-${process.pid}`;
    // Networking and disk images are issue 6's, opt-in through `extra` (as in test/warden/linux).
    this.backend = {
      depotDir: join(this.dir, 'depot'),
      rootfsDir: join(this.dir, 'rootfs'),
      cgroupParent: this.cgroupParent,
      stopTimeoutMs: 2000,
      network: false,
      disk: false,
    };
    this.configFile = join(this.dir, 'wardend.json');
    writeFileSync(this.configFile, JSON.stringify({ socket: this.socket, health: null, ...this.backend, ...extra }));
    Object.assign(this.backend, extra);
  }

  /** Starts wardend and resolves once it prints `ready`. */
  async start(): Promise<void> {
    const child = spawn(process.execPath, [BIN, 'wardend', '--config', this.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr!.on('data', (b: Buffer) => {
      this.stderr += b.toString();
    });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('wardend ready')) resolve();
      });
      child.once('exit', (code, signal) => reject(new Error(`wardend exited (${code ?? signal}) before ready: ${this.stderr}`)));
    });
  }

  get pid(): number {
    return this.child!.pid!;
  }

  async client(): Promise<WardenClient> {
    const c = await WardenClient.connect(this.socket);
    this.#clients.push(c);
    return c;
  }

  /** Sends `signal` and resolves with the exit code (or signal) once wardend is gone. */
  async stop(signal: NodeJS.Signals): Promise<number | string> {
    const child = this.child!;
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode!;
    const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig!)));
    child.kill(signal);
    return exited;
  }

  /** Destroys every container left (through a backend over the same depot), removes it all. */
  async cleanup(): Promise<void> {
    for (const c of this.#clients) c.close();
    if (this.child) await this.stop('SIGKILL');
    const backend = await createLinuxWardenService(this.backend as Partial<LinuxWardenConfig>);
    await backend.destroyAll();
    await backend.close();
    for (const dir of cgroupParentDirs(this.cgroupParent)) {
      try {
        rmdirSync(dir);
      } catch {
        // something is still inside: the next start() cleans it
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A pid is alive (signal 0 reaches it). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
