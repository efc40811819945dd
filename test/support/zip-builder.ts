/**
 * A small ZIP writer for TEST FIXTURES ONLY. It writes exactly what it is told, including things
 * no honest zip tool would write (names with `../`, backslashes or NUL bytes, lying sizes, the
 * encryption flag without encryption, a multi-disk end record), so tests can aim hostile
 * archives at the unpacker. Layout (APPNOTE 6.3): per entry a local file header and its data,
 * then the central directory, then the end-of-central-directory record. No zip64, no data
 * descriptors.
 */
import { deflateRawSync } from 'node:zlib';

export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

/** General-purpose bit flags. */
export const FLAG_ENCRYPTED = 1 << 0;
export const FLAG_STRONG_ENCRYPTION = 1 << 6;
export const FLAG_UTF8 = 1 << 11;

export interface ZipEntry {
  /** A string (written as UTF-8) or the exact name bytes. */
  name: string | Uint8Array;
  /** File contents, or a symlink's target. */
  data?: string | Uint8Array;
  /** Default: 'deflate' for entries with data, 'store' for empty ones. */
  method?: 'store' | 'deflate';
  /** A full unix st_mode (type bits included). When set, the entry is marked as made on unix
   * (versionMadeBy = 3 << 8) and the mode goes in the high 16 bits of the external attributes. */
  mode?: number;
  /** Shorthand: a symlink entry (mode 0120777) whose data is the target. */
  symlink?: string;
  /** Extra general-purpose bits, OR-ed in (FLAG_ENCRYPTED, …). */
  flags?: number;
  /** Set the UTF-8 flag (bit 11). Default: set when a string name is not plain ASCII. */
  utf8?: boolean;
  /** Raw extra field bytes (local and central), e.g. from `unicodePathExtra`. */
  extra?: Uint8Array;
  /** Lies: written instead of the true values, in both headers. */
  declaredUncompressedSize?: number;
  declaredCompressedSize?: number;
  crc32?: number;
  /** Overrides, for full control. */
  versionMadeBy?: number;
  externalAttributes?: number;
}

export interface ZipOptions {
  /** End-of-central-directory overrides. */
  eocd?: {
    diskNumber?: number;
    centralDirectoryDisk?: number;
    entriesOnThisDisk?: number;
    totalEntries?: number;
    centralDirectorySize?: number;
    centralDirectoryOffset?: number;
    comment?: string | Uint8Array;
  };
}

const VERSION_NEEDED = 20; // 2.0: deflate, directories
const DOS_TIME = (12 << 11) | (0 << 5) | 0; // 12:00:00
const DOS_DATE = ((2024 - 1980) << 9) | (1 << 5) | 1; // 2024-01-01

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const bytesOf = (v: string | Uint8Array | undefined): Buffer => (v === undefined ? Buffer.alloc(0) : typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v));

/** An Info-ZIP Unicode Path extra field (0x7075): a UTF-8 name that readers prefer over the header's. */
export function unicodePathExtra(headerName: string | Uint8Array, unicodeName: string): Buffer {
  const name = Buffer.from(unicodeName, 'utf8');
  const data = Buffer.alloc(5 + name.length);
  data.writeUInt8(1, 0);
  data.writeUInt32LE(crc32(bytesOf(headerName)), 1);
  name.copy(data, 5);
  const head = Buffer.alloc(4);
  head.writeUInt16LE(0x7075, 0);
  head.writeUInt16LE(data.length, 2);
  return Buffer.concat([head, data]);
}

export function buildZip(entries: ZipEntry[], options: ZipOptions = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;

  for (const e of entries) {
    const name = bytesOf(e.name);
    const raw = bytesOf(e.symlink ?? e.data);
    const mode = e.symlink !== undefined ? S_IFLNK | 0o777 : e.mode;
    const method = e.method ?? (raw.length > 0 ? 'deflate' : 'store');
    const body = method === 'deflate' ? deflateRawSync(raw) : raw;
    const utf8 = e.utf8 ?? (typeof e.name === 'string' && /[^\x00-\x7f]/.test(e.name));
    const flags = (e.flags ?? 0) | (utf8 ? FLAG_UTF8 : 0);
    const methodCode = method === 'deflate' ? 8 : 0;
    const crc = e.crc32 ?? crc32(raw);
    const compressedSize = e.declaredCompressedSize ?? body.length;
    const uncompressedSize = e.declaredUncompressedSize ?? raw.length;
    const extra = bytesOf(e.extra);
    const versionMadeBy = e.versionMadeBy ?? (mode !== undefined ? (3 << 8) | VERSION_NEEDED : VERSION_NEEDED);
    const external = e.externalAttributes ?? (mode !== undefined ? ((mode & 0xffff) << 16) >>> 0 : 0);

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(VERSION_NEEDED, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(methodCode, 8);
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(compressedSize, 18);
    local.writeUInt32LE(uncompressedSize, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(extra.length, 28);

    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(versionMadeBy, 4);
    cd.writeUInt16LE(VERSION_NEEDED, 6);
    cd.writeUInt16LE(flags, 8);
    cd.writeUInt16LE(methodCode, 10);
    cd.writeUInt16LE(DOS_TIME, 12);
    cd.writeUInt16LE(DOS_DATE, 14);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(compressedSize, 20);
    cd.writeUInt32LE(uncompressedSize, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt16LE(extra.length, 30);
    cd.writeUInt16LE(0, 32); // comment length
    cd.writeUInt16LE(0, 34); // disk number start
    cd.writeUInt16LE(0, 36); // internal attributes
    cd.writeUInt32LE(external, 38);
    cd.writeUInt32LE(offset, 42);

    parts.push(local, name, extra, body);
    offset += local.length + name.length + extra.length + body.length;
    central.push(cd, name, extra);
  }

  const cdBytes = Buffer.concat(central);
  const o = options.eocd ?? {};
  const comment = bytesOf(o.comment);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(o.diskNumber ?? 0, 4);
  eocd.writeUInt16LE(o.centralDirectoryDisk ?? 0, 6);
  eocd.writeUInt16LE(o.entriesOnThisDisk ?? entries.length, 8);
  eocd.writeUInt16LE(o.totalEntries ?? entries.length, 10);
  eocd.writeUInt32LE(o.centralDirectorySize ?? cdBytes.length, 12);
  eocd.writeUInt32LE(o.centralDirectoryOffset ?? offset, 16);
  eocd.writeUInt16LE(comment.length, 20);
  return Buffer.concat([...parts, cdBytes, eocd, comment]);
}
