/**
 * The task log as it grows, published to S3 (at most once a second, and once at the end) so
 * that whoever sent the request can tail it live (`dropwarden stage` does). Best effort: a
 * failed publish is logged and never fails the staging.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

export class LiveLog {
  private timer?: NodeJS.Timeout;
  private pending?: Promise<void>;
  private dirty = false;
  private readonly s3: S3Client;
  private readonly bucket: string;
  private readonly key: string;
  private readonly text: () => string;
  private readonly onError: (err: Error) => void;

  constructor(opts: { s3: S3Client; bucket: string; key: string; text: () => string; onError: (err: Error) => void }) {
    this.s3 = opts.s3;
    this.bucket = opts.bucket;
    this.key = opts.key;
    this.text = opts.text;
    this.onError = opts.onError;
  }

  /** Something was logged: publish within a second. */
  touch(): void {
    this.dirty = true;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.publish();
    }, 1000);
  }

  private publish(): Promise<void> {
    if (!this.dirty) return this.pending ?? Promise.resolve();
    this.dirty = false;
    const body = this.text();
    const previous = this.pending ?? Promise.resolve();
    this.pending = previous.then(() =>
      this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key, Body: body, ContentType: 'text/plain; charset=utf-8' })).then(
        () => undefined,
        (err: Error) => this.onError(err),
      ),
    );
    return this.pending;
  }

  /** Publishes what is left; call once the task is over. */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.dirty = true;
    await this.publish();
  }
}
