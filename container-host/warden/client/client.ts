import { createConnection, type Socket } from 'node:net';
import { decodeResponse, encodeRequest, type DecodedResponse } from '../protocol/codec.ts';
import { DEFAULT_SOCKET_PATH } from '../protocol/constants.ts';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder } from '../protocol/framing.ts';
import type { RequestName, RequestOf, ResponseOf, StreamRequest, StreamResponse } from '../protocol/types.ts';
import { WardenClientClosedError, WardenConnectionError, WardenResponseError } from './errors.ts';

export interface ClientOptions {
  maxFrameBytes?: number;
}

/** Receives the frames of one request, in order; returns true after its last one. */
interface Sink {
  frame(decoded: DecodedResponse): boolean;
  fail(err: Error): void;
}

/**
 * One connection to wardend. Requests may be issued without waiting (they are pipelined); the
 * server answers them one at a time in order, so answers are matched first-in first-out.
 */
export class WardenClient {
  readonly socketPath: string;
  private readonly socket: Socket;
  private readonly decoder: FrameDecoder;
  private readonly maxFrameBytes: number;
  private readonly sinks: Sink[] = [];
  private failure: Error | undefined;

  private constructor(socketPath: string, socket: Socket, options: ClientOptions) {
    this.socketPath = socketPath;
    this.socket = socket;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.decoder = new FrameDecoder({ maxFrameBytes: this.maxFrameBytes });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new WardenConnectionError(`connection to wardend at ${socketPath} failed: ${err.message}`)));
    socket.on('close', () => this.fail(new WardenConnectionError(`wardend at ${socketPath} closed the connection`)));
  }

  static connect(socketPath = DEFAULT_SOCKET_PATH, options: ClientOptions = {}): Promise<WardenClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(socketPath);
      const onError = (err: NodeJS.ErrnoException) => {
        reject(
          new WardenConnectionError(
            `cannot connect to wardend at ${socketPath} (${err.code ?? err.message}); ` + 'is wardend running (`dropwarden wardend`), and is this the right --socket?',
          ),
        );
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new WardenClient(socketPath, socket, options));
      });
    });
  }

  /** True once the connection broke or was closed; a broken client cannot be reused. */
  get closed(): boolean {
    return this.failure !== undefined;
  }

  /** Requests sent whose answers have not all arrived. */
  get pending(): number {
    return this.sinks.length;
  }

  /** One request, one answer. Rejects with WardenResponseError when wardend answers an error. */
  call<K extends Exclude<RequestName, 'Stream'>>(name: K, request: RequestOf<K>): Promise<ResponseOf<K>> {
    return new Promise((resolve, reject) => {
      this.send(name, request, {
        frame: (d) => {
          if ('error' in d) reject(new WardenResponseError(name, d.error));
          else if (d.name !== name) reject(new WardenConnectionError(`wardend answered ${name} with ${d.name}; the connection is out of step`));
          else resolve(d.response as ResponseOf<K>);
          return true;
        },
        fail: reject,
      });
    });
  }

  /**
   * Stream's answers as they arrive; ends after the one carrying exit_status. Leaving the loop
   * early is fine: the rest of the answers are read and dropped so the connection stays usable.
   */
  stream(request: StreamRequest): AsyncIterable<StreamResponse> {
    const queue: Array<StreamResponse | Error> = [];
    let finished = false;
    let abandoned = false;
    let wake: (() => void) | undefined;
    const push = (item: StreamResponse | Error) => {
      if (!abandoned) queue.push(item);
      wake?.();
    };
    this.send('Stream', request, {
      frame: (d) => {
        if ('error' in d) {
          push(new WardenResponseError('Stream', d.error));
          return (finished = true);
        }
        const response = d.response as StreamResponse;
        push(response);
        return (finished = response.exit_status !== undefined);
      },
      fail: (err) => {
        finished = true;
        push(err);
      },
    });
    return {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<StreamResponse>> => {
          while (queue.length === 0) {
            if (finished) return { done: true, value: undefined };
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
          }
          const item = queue.shift()!;
          if (item instanceof Error) {
            queue.length = 0;
            throw item;
          }
          return { done: false, value: item };
        },
        return: async (): Promise<IteratorResult<StreamResponse>> => {
          abandoned = true;
          queue.length = 0;
          return { done: true, value: undefined };
        },
      }),
    };
  }

  close(): void {
    this.socket.end();
    this.fail(new WardenClientClosedError('the client was closed'));
  }

  private send(name: RequestName, request: object, sink: Sink): void {
    if (this.failure) {
      sink.fail(this.failure);
      return;
    }
    let frame: Buffer;
    try {
      frame = encodeFrame(encodeRequest(name, request as never), this.maxFrameBytes);
    } catch (err) {
      sink.fail(err as Error);
      return;
    }
    this.sinks.push(sink);
    this.socket.write(frame);
  }

  private onData(chunk: Buffer): void {
    try {
      this.decoder.write(chunk, (payload) => {
        const sink = this.sinks[0];
        if (!sink) throw new WardenConnectionError('wardend sent an answer to no request; the connection is out of step');
        if (sink.frame(decodeResponse(payload))) this.sinks.shift();
      });
    } catch (err) {
      this.fail(err as Error);
      this.socket.destroy();
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const sink of this.sinks.splice(0)) sink.fail(this.failure);
  }
}
