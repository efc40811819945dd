import { FrameTooLargeError, MalformedFrameError } from './errors.ts';

/** Frames are `<decimal payload length>\r\n<payload>\r\n` in both directions (DESIGN §5). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

const CR = 0x0d;
const LF = 0x0a;
const CRLF = Buffer.from('\r\n');

export function encodeFrame(payload: Uint8Array, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Buffer {
  if (payload.length > maxFrameBytes) throw new FrameTooLargeError(payload.length, maxFrameBytes);
  return Buffer.concat([Buffer.from(`${payload.length}\r\n`, 'latin1'), payload, CRLF]);
}

/** A refused length header is quoted up to this many digits. */
const MAX_REPORTED_DIGITS = 32;

type State = 'length' | 'length-lf' | 'payload' | 'trailer-cr' | 'trailer-lf';

/**
 * Turns a byte stream cut into arbitrary chunks into payloads. After it throws (malformed
 * framing or an oversize length) the stream is out of step and every later push throws too.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  private state: State = 'length';
  private digits = 0;
  private length = 0;
  private payload: Buffer = Buffer.alloc(0);
  private filled = 0;
  private failure: Error | undefined;

  private readonly reserve: ((length: number) => void) | undefined;

  /**
   * `reserve` is called with each frame's payload length once its header is complete, before
   * the payload is buffered; it may throw to refuse the frame (wardend's cap on the bytes held
   * across connections), which fails the decoder like bad framing does.
   */
  constructor(options: { maxFrameBytes?: number; reserve?: (length: number) => void } = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.reserve = options.reserve;
  }

  /** True between frames: nothing of a next frame has arrived yet. */
  get idle(): boolean {
    return this.state === 'length' && this.digits === 0 && this.failure === undefined;
  }

  /** The payloads completed by this chunk. Throws on bad framing (losing frames before it). */
  push(chunk: Uint8Array): Buffer[] {
    const frames: Buffer[] = [];
    this.write(chunk, (payload) => frames.push(payload));
    return frames;
  }

  /**
   * Calls onFrame for each payload this chunk completes, in order; on bad framing it throws
   * after the frames that came before it were delivered, so they can still be answered.
   */
  write(chunk: Uint8Array, onFrame: (payload: Buffer) => void): void {
    if (this.failure) throw this.failure;
    try {
      this.consume(chunk, onFrame);
    } catch (err) {
      this.failure = err as Error;
      throw err;
    }
  }

  private consume(chunk: Uint8Array, onFrame: (payload: Buffer) => void): void {
    let i = 0;
    while (i < chunk.length) {
      switch (this.state) {
        case 'length': {
          const byte = chunk[i++];
          if (byte >= 0x30 && byte <= 0x39) {
            this.length = this.length * 10 + (byte - 0x30);
            this.digits++;
            // Checked per digit so a huge header is refused before it is even complete; the
            // error names the header as sent (the digits in this chunk, at most MAX_REPORTED).
            if (this.length > this.maxFrameBytes) {
              let header = String(this.length);
              while (i < chunk.length && chunk[i] >= 0x30 && chunk[i] <= 0x39 && header.length < MAX_REPORTED_DIGITS) {
                header += String.fromCharCode(chunk[i++]);
              }
              const more = i < chunk.length ? chunk[i] >= 0x30 && chunk[i] <= 0x39 : true;
              throw new FrameTooLargeError(Number(header), this.maxFrameBytes, more ? `of at least ${header}` : header);
            }
          } else if (byte === CR && this.digits > 0) {
            this.state = 'length-lf';
          } else {
            throw new MalformedFrameError(`expected a decimal length followed by CR LF, got byte 0x${byte.toString(16).padStart(2, '0')}`);
          }
          break;
        }
        case 'length-lf':
          if (chunk[i++] !== LF) throw new MalformedFrameError('length header not ended by CR LF');
          this.reserve?.(this.length);
          this.payload = Buffer.allocUnsafe(this.length);
          this.filled = 0;
          this.state = this.length === 0 ? 'trailer-cr' : 'payload';
          break;
        case 'payload': {
          const take = Math.min(this.length - this.filled, chunk.length - i);
          this.payload.set(chunk.subarray(i, i + take), this.filled);
          this.filled += take;
          i += take;
          if (this.filled === this.length) this.state = 'trailer-cr';
          break;
        }
        case 'trailer-cr':
          if (chunk[i++] !== CR) throw new MalformedFrameError(`payload of ${this.length} bytes not followed by CR LF`);
          this.state = 'trailer-lf';
          break;
        case 'trailer-lf':
          if (chunk[i++] !== LF) throw new MalformedFrameError(`payload of ${this.length} bytes not followed by CR LF`);
          {
            const payload = this.payload;
            this.payload = Buffer.alloc(0);
            this.state = 'length';
            this.length = 0;
            this.digits = 0;
            onFrame(payload);
          }
          break;
      }
    }
  }
}
