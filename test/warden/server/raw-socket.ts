import { createConnection, type Socket } from 'node:net';
import { decodeResponse, FrameDecoder, type DecodedResponse } from '../../../container-host/warden/protocol/index.ts';

/** A test-side connection that writes raw bytes and reads decoded response frames. */
export class RawSocket {
  readonly socket: Socket;
  readonly closed: Promise<void>;
  private readonly frames: Buffer[] = [];
  private waiters: Array<() => void> = [];
  private readonly decoder = new FrameDecoder();
  private ended = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) this.frames.push(f);
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.ended = true;
        this.wake();
        resolve();
      });
    });
    socket.on('error', () => {});
  }

  static open(path: string): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path, () => resolve(new RawSocket(s)));
      s.once('error', reject);
    });
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(bytes: Uint8Array | string): void {
    this.socket.write(bytes);
  }

  /** The next raw frame payload, or undefined once the server closed without sending one. */
  async nextPayload(): Promise<Buffer | undefined> {
    while (this.frames.length === 0) {
      if (this.ended) return undefined;
      await new Promise<void>((r) => this.waiters.push(r));
    }
    return this.frames.shift();
  }

  async next(): Promise<DecodedResponse> {
    const payload = await this.nextPayload();
    if (!payload) throw new Error('connection closed before a response arrived');
    return decodeResponse(payload);
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
