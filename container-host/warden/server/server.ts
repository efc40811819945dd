import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { DEFAULT_MAX_FRAME_BYTES } from '../protocol/framing.ts';
import { FrameBudget } from './budget.ts';
import { WardenConnection } from './connection.ts';
import type { WardenService } from './service.ts';
import { resolveGid } from './socket-group.ts';

export interface WardenServerOptions {
  socketPath: string;
  /** Default 0o660: the owner and the socket group may talk to wardend. */
  socketMode?: number;
  /** Group name or gid that owns the socket; default: the daemon's group. */
  socketGroup?: string | number;
  maxFrameBytes?: number;
  /** The request bytes all connections together may hold; default 4 × maxFrameBytes. */
  maxBufferedBytes?: number;
  /** Close connections that hold no container after this long without traffic; 0: never. */
  idleTimeoutMs?: number;
  log?: (line: string) => void;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;

export class SocketInUseError extends Error {
  override name = 'SocketInUseError';
}

/** wardend's unix socket: accepts connections and gives each its own WardenConnection. */
export class WardenServer {
  readonly socketPath: string;
  private readonly service: WardenService;
  private readonly options: Required<Omit<WardenServerOptions, 'socketGroup'>> & Pick<WardenServerOptions, 'socketGroup'>;
  private readonly server: Server;
  private readonly connections = new Set<WardenConnection>();
  readonly budget: FrameBudget;

  constructor(service: WardenService, options: WardenServerOptions) {
    this.service = service;
    this.socketPath = options.socketPath;
    this.options = {
      socketMode: 0o660,
      maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
      log: () => {},
      ...options,
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      maxBufferedBytes: options.maxBufferedBytes ?? 4 * (options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES),
    };
    this.budget = new FrameBudget(this.options.maxBufferedBytes);
    // Half-open: a client may send its requests and shut its write side; it still gets answers.
    this.server = createServer({ allowHalfOpen: true }, (socket) => {
      const connection = new WardenConnection(socket, this.service, {
        maxFrameBytes: this.options.maxFrameBytes,
        budget: this.budget,
        idleTimeoutMs: this.options.idleTimeoutMs,
        log: this.options.log,
      });
      this.connections.add(connection);
      void connection.closedPromise.then(() => this.connections.delete(connection));
    });
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get listening(): boolean {
    return this.server.listening;
  }

  async listen(): Promise<void> {
    await mkdir(dirname(this.socketPath), { recursive: true });
    await removeStaleSocket(this.socketPath);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.socketPath, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    await chmod(this.socketPath, this.options.socketMode);
    if (this.options.socketGroup !== undefined) {
      await chown(this.socketPath, -1, await resolveGid(this.options.socketGroup));
    }
  }

  /**
   * Stops accepting; each connection answers the requests it has already read and closes.
   * Connections still busy after `timeoutMs` (a Link waiting on a long job) are dropped: the
   * job goes on and can be linked again after the restart. Removes the socket.
   */
  async drain(timeoutMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.connections].map((c) => c.drain())),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    for (const connection of this.connections) connection.destroy();
    await closed;
    await unlink(this.socketPath).catch(() => {});
  }

  /** Stops accepting, drops every connection (releasing their handles), removes the socket. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.destroy();
    await closed;
    await unlink(this.socketPath).catch(() => {});
  }
}

/** A socket file nobody answers on is left from a crash; one that answers is another wardend. */
async function removeStaleSocket(path: string): Promise<void> {
  const stat = await lstat(path).catch(() => undefined);
  if (!stat) return;
  if (!stat.isSocket()) {
    throw new SocketInUseError(`${path} exists and is not a socket; remove it or choose another socket path`);
  }
  const answered = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (answered) {
    throw new SocketInUseError(`another wardend is already listening on ${path}; stop it or choose another socket path`);
  }
  await unlink(path);
}
