import type { RequestName, RequestOf, ResponseOf, StreamRequest, StreamResponse } from '../protocol/types.ts';
import { DEFAULT_SOCKET_PATH } from '../protocol/constants.ts';
import { WardenClient, type ClientOptions } from './client.ts';
import { WardenConnectionError } from './errors.ts';

export interface PoolOptions extends ClientOptions {
  socketPath?: string;
  /** Connections opened at most; requests beyond that wait for a free one. Default 4. */
  size?: number;
}

/**
 * A few connections to wardend, each serving one request at a time, so slow requests (run,
 * link, stream) do not hold up others. Connections open on demand; broken ones are replaced.
 */
export class WardenPool {
  readonly socketPath: string;
  readonly size: number;
  private readonly options: ClientOptions;
  private readonly idle: WardenClient[] = [];
  private readonly waiters: Array<(client: WardenClient | undefined) => void> = [];
  private open = 0;
  private closed = false;

  constructor(options: PoolOptions = {}) {
    this.socketPath = options.socketPath ?? DEFAULT_SOCKET_PATH;
    this.size = options.size ?? 4;
    this.options = { maxFrameBytes: options.maxFrameBytes };
  }

  async call<K extends Exclude<RequestName, 'Stream'>>(name: K, request: RequestOf<K>): Promise<ResponseOf<K>> {
    const client = await this.acquire();
    try {
      return await client.call(name, request);
    } finally {
      this.release(client);
    }
  }

  /** The connection is held until the stream ends or the loop is left. */
  async *stream(request: StreamRequest): AsyncGenerator<StreamResponse> {
    const client = await this.acquire();
    try {
      for await (const response of client.stream(request)) yield response;
    } finally {
      // left early: the client drains the remaining answers before serving the next request
      this.release(client);
    }
  }

  /** Closes idle connections now and busy ones as they come back. */
  close(): void {
    this.closed = true;
    for (const client of this.idle.splice(0)) client.close();
    for (const wake of this.waiters.splice(0)) wake(undefined);
  }

  private async acquire(): Promise<WardenClient> {
    if (this.closed) throw new WardenConnectionError('the warden pool is closed');
    for (let client = this.idle.pop(); client; client = this.idle.pop()) {
      if (!client.closed) return client;
      this.open--;
    }
    if (this.open < this.size) {
      this.open++;
      try {
        return await WardenClient.connect(this.socketPath, this.options);
      } catch (err) {
        this.open--;
        throw err;
      }
    }
    const client = await new Promise<WardenClient | undefined>((resolve) => this.waiters.push(resolve));
    return client ?? this.acquire();
  }

  private release(client: WardenClient): void {
    if (client.closed || this.closed) {
      if (!client.closed) client.close();
      this.open--;
      // a freed slot: let the next waiter open its own connection
      this.waiters.shift()?.(undefined);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter(client);
    else this.idle.push(client);
  }
}
