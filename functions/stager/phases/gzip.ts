/** The droplet's gzip layer. */
import { createGzip } from 'node:zlib';
import type { Transform } from 'node:stream';

export function gzipStream(level: number): Transform {
  return createGzip({ level, chunkSize: 256 * 1024 });
}
