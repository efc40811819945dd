import type { Socket } from 'node:net';
import { decodeRequest, encodeErrorResponse, encodeResponse, type DecodedRequest } from '../protocol/codec.ts';
import { FrameTooLargeError, WardenProtocolError } from '../protocol/errors.ts';
import { encodeFrame, FrameDecoder } from '../protocol/framing.ts';
import type { ErrorResponse } from '../protocol/types.ts';
import { dispatch, dispatchStream } from './dispatch.ts';
import type { FrameBudget } from './budget.ts';
import { handleToService } from './handles.ts';
import { WardenError, type WardenService } from './service.ts';

export interface ConnectionOptions {
  maxFrameBytes: number;
  /** Shared by every connection: the request bytes they may hold together. */
  budget: FrameBudget;
  /** Close a connection that holds no container and has neither sent nor been sent anything for this long; 0: never. */
  idleTimeoutMs: number;
  /** Operator-facing diagnostics (one line each); clients get ErrorResponses instead. */
  log: (line: string) => void;
}

/** Read no further while this many requests wait; resume below the low mark. */
const HIGH_WATER = 64;
const LOW_WATER = 16;

type Work =
  /** `bytes`: the frame's share of the budget, given back once it is answered. */
  | { kind: 'request'; decoded: DecodedRequest; bytes: number }
  /** `close`: the stream is out of step; answer, then close this connection. */
  | { kind: 'error'; message: string; close: boolean }
  /** Everything before it is answered: close this connection. */
  | { kind: 'close' };

/**
 * One client connection: frames in, requests served one at a time in arrival order, answers out
 * in that same order. Failures are answered, never dropped; only broken framing closes it.
 */
export class WardenConnection {
  private readonly socket: Socket;
  private readonly service: WardenService;
  private readonly options: ConnectionOptions;
  private readonly decoder: FrameDecoder;
  private readonly queue: Work[] = [];
  private readonly abort = new AbortController();
  /** Handles this connection has referenced (each retained once, released at close). */
  private readonly handles = new Set<string>();
  private pumping = false;
  private paused = false;
  private readingDone = false;
  private closed = false;
  /** Budget bytes this connection holds: the frame being read and those waiting or being served. */
  private held = 0;
  readonly closedPromise: Promise<void>;

  constructor(socket: Socket, service: WardenService, options: ConnectionOptions) {
    this.socket = socket;
    this.service = service;
    this.options = options;
    this.decoder = new FrameDecoder({
      maxFrameBytes: options.maxFrameBytes,
      reserve: (length) => {
        options.budget.take(length);
        this.held += length;
      },
    });
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err) => options.log(`warden connection error: ${err.message}`));
    socket.on('close', () => this.onClose());
    if (options.idleTimeoutMs > 0) {
      socket.setTimeout(options.idleTimeoutMs);
      socket.on('timeout', () => this.onIdle());
    }
  }

  /**
   * Nothing went either way for idleTimeoutMs. A connection that references a container keeps
   * it alive (closing it would start the container's grace time), and one serving a request is
   * busy; any other (an idle client, or one that stopped half-way through a frame) is closed,
   * without an answer, which would be one to no request.
   */
  private onIdle(): void {
    if (this.closed || this.handles.size > 0 || this.pumping || this.queue.length > 0) return;
    const partial = this.decoder.idle ? '' : ' in the middle of a frame';
    this.options.log(`warden connection closed: idle for ${this.options.idleTimeoutMs} ms${partial}, holding no container`);
    this.socket.destroy();
  }

  /** Gives back a frame's share of the budget (all of it once closed). */
  private giveBack(bytes: number): void {
    const n = Math.min(bytes, this.held);
    this.held -= n;
    this.options.budget.give(n);
  }

  private onData(chunk: Buffer): void {
    if (this.readingDone) return;
    try {
      this.decoder.write(chunk, (payload) => {
        const work = this.decode(payload);
        if (work.kind !== 'request') this.giveBack(payload.length);
        this.enqueue(work);
      });
    } catch (err) {
      this.stopReading();
      const message = err instanceof Error ? err.message : String(err);
      this.options.log(`warden connection closed: ${message}`);
      this.enqueue({ kind: 'error', message, close: true });
    }
  }

  private decode(payload: Buffer): Work {
    try {
      return { kind: 'request', decoded: decodeRequest(payload), bytes: payload.length };
    } catch (err) {
      if (!(err instanceof WardenProtocolError)) throw err;
      return { kind: 'error', message: err.message, close: false };
    }
  }

  /** The client finished sending: answer what it sent, then close our side too. */
  private onEnd(): void {
    if (this.readingDone) return;
    this.readingDone = true;
    if (this.decoder.idle) this.enqueue({ kind: 'close' });
    else this.enqueue({ kind: 'error', message: 'connection ended in the middle of a frame (truncated)', close: true });
  }

  private stopReading(): void {
    this.readingDone = true;
    this.socket.pause();
  }

  private enqueue(work: Work): void {
    this.queue.push(work);
    if (!this.paused && !this.readingDone && this.queue.length >= HIGH_WATER) {
      this.paused = true;
      this.socket.pause();
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const work = this.queue.shift()!;
        if (this.paused && !this.readingDone && this.queue.length < LOW_WATER) {
          this.paused = false;
          this.socket.resume();
        }
        if (work.kind === 'request') {
          try {
            await this.serve(work.decoded);
          } finally {
            this.giveBack(work.bytes);
          }
          continue;
        }
        if (work.kind === 'error') await this.send(encodeErrorResponse({ message: work.message }));
        if (work.kind === 'close' || work.close) {
          this.socket.end(() => this.socket.destroy());
          return;
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private async serve(decoded: DecodedRequest): Promise<void> {
    const handle = 'handle' in decoded.request ? decoded.request.handle : undefined;
    if (handle && decoded.name !== 'Create') this.retain(handleToService(handle));
    try {
      if (decoded.name === 'Stream') {
        for await (const response of dispatchStream(this.service, decoded.request, this.abort.signal)) {
          if (this.closed) return;
          await this.sendResponse('Stream', response);
          if (response.exit_status !== undefined) return;
        }
        throw new WardenError('host_failure', 'stream ended without an exit status');
      }
      const response = await dispatch(this.service, decoded, this.abort.signal);
      if (decoded.name === 'Create') this.retain(handleToService((response as { handle: Buffer }).handle));
      if (decoded.name === 'Destroy' && handle) this.release(handleToService(handle));
      await this.sendResponse(decoded.name, response);
    } catch (err) {
      await this.send(encodeErrorResponse(errorResponse(err, this.options.log)));
    }
  }

  private async sendResponse(name: DecodedRequest['name'], response: object): Promise<void> {
    await this.send(encodeResponse(name, response as never));
  }

  private async send(payload: Buffer): Promise<void> {
    if (this.closed) return;
    let frame: Buffer;
    try {
      frame = encodeFrame(payload, this.options.maxFrameBytes);
    } catch (err) {
      if (!(err instanceof FrameTooLargeError)) throw err;
      frame = encodeFrame(encodeErrorResponse({ message: `response too large: ${err.message}` }));
    }
    if (this.socket.write(frame)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  private retain(handle: string): void {
    // Closed already (e.g. the client left while Create ran): nothing would release it.
    if (this.closed || this.handles.has(handle)) return;
    this.handles.add(handle);
    this.service.retain(handle);
  }

  private release(handle: string): void {
    if (!this.handles.delete(handle)) return;
    this.service.release(handle);
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.readingDone = true;
    this.queue.length = 0;
    this.giveBack(this.held);
    this.abort.abort();
    for (const handle of [...this.handles]) this.release(handle);
  }

  /**
   * Drain (SIGUSR2): read no further requests, answer those already read, then close. Resolves
   * once closed; a request that never ends (a long Link) is the caller's to cut with destroy().
   */
  drain(): Promise<void> {
    if (!this.closed && !this.readingDone) {
      this.stopReading();
      this.enqueue({ kind: 'close' });
    }
    return this.closedPromise;
  }

  /** Close from the server side (shutdown). */
  destroy(): void {
    this.socket.destroy();
  }
}

/** A WardenError goes to the client verbatim, with its code; anything else is also logged, being our fault. */
function errorResponse(err: unknown, log: (line: string) => void): ErrorResponse {
  if (err instanceof WardenError) return { message: err.message, data: err.code };
  const message = err instanceof Error ? err.message : String(err);
  log(`warden request failed unexpectedly: ${err instanceof Error ? (err.stack ?? message) : message}`);
  return { message };
}
