import protobuf from 'protobufjs';
import { parseRequestName, REQUEST_NAMES } from '../../protocol/message-types.ts';
import { requestType } from '../../protocol/schema.ts';
import type { RequestName } from '../../protocol/types.ts';

/** A command line that does not name a request or its fields correctly. */
export class RequestArgsError extends Error {
  override name = 'RequestArgsError';
}

export interface ParsedRequest {
  name: RequestName;
  request: Record<string, unknown>;
}

export function describeRequest(name: RequestName): string {
  const fields = requestType(name).fieldsArray.map((f) => {
    const kind = f.resolvedType instanceof protobuf.Enum ? Object.keys(f.resolvedType.values).join('|') : f.type;
    return `--${f.name} <${f.repeated ? `${kind}…` : kind}>${f.required ? ' (required)' : ''}`;
  });
  return `${toCliName(name)} ${fields.join(' ')}`.trim();
}

export function toCliName(name: RequestName): string {
  return name.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

/**
 * `create --grace_time 30 --bind_mounts /src:/dst:rw` → the CreateRequest object. Field names
 * may use _ or -; a bool flag without a value is true; message fields take JSON (or the
 * shorthands `src:dst[:ro|rw]` for bind_mounts and `k=v,k=v` for rlimits).
 */
export function parseRequestArgs(words: string[]): ParsedRequest {
  const [first, ...rest] = words;
  if (!first) throw new RequestArgsError('name a request');
  const name = parseRequestName(first);
  if (!name) {
    throw new RequestArgsError(`unknown request "${first}"; one of: ${REQUEST_NAMES.map(toCliName).join(', ')}`);
  }
  const type = requestType(name);
  const request: Record<string, unknown> = {};
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i];
    if (!word.startsWith('--')) throw new RequestArgsError(`expected --field before "${word}"; usage: ${describeRequest(name)}`);
    const eq = word.indexOf('=');
    const key = (eq < 0 ? word.slice(2) : word.slice(2, eq)).replace(/-/g, '_');
    const field = type.fields[key] ?? type.fieldsArray.find((f) => f.name.replace(/_/g, '') === key.toLowerCase());
    if (!field) throw new RequestArgsError(`${toCliName(name)} has no field --${key}; usage: ${describeRequest(name)}`);
    let raw: string | undefined;
    if (eq >= 0) raw = word.slice(eq + 1);
    else if (field.type === 'bool' && (i + 1 >= rest.length || rest[i + 1].startsWith('--'))) raw = 'true';
    else if (i + 1 < rest.length) raw = rest[++i];
    if (raw === undefined) throw new RequestArgsError(`--${field.name} needs a value`);
    const value = convert(field, raw);
    if (field.repeated) request[field.name] = [...((request[field.name] as unknown[]) ?? []), value];
    else request[field.name] = value;
  }
  for (const field of type.fieldsArray) {
    if (field.required && request[field.name] === undefined) {
      throw new RequestArgsError(`${toCliName(name)} needs --${field.name}; usage: ${describeRequest(name)}`);
    }
  }
  return { name, request };
}

function convert(field: protobuf.Field, raw: string): unknown {
  const where = `--${field.name}`;
  if (field.resolvedType instanceof protobuf.Enum) return enumValue(field.resolvedType, raw, where);
  if (field.resolvedType instanceof protobuf.Type) return messageValue(field, field.resolvedType, raw);
  switch (field.type) {
    case 'string':
    case 'bytes':
      return raw;
    case 'bool':
      if (/^(true|yes|1)$/i.test(raw)) return true;
      if (/^(false|no|0)$/i.test(raw)) return false;
      throw new RequestArgsError(`${where} takes true or false, not "${raw}"`);
    default: {
      const n = Number(raw);
      const signed = field.type.startsWith('int') || field.type.startsWith('sint');
      if (raw.trim() === '' || !Number.isSafeInteger(n) || (!signed && n < 0)) {
        throw new RequestArgsError(`${where} takes ${signed ? 'an integer' : 'a non-negative integer'}, not "${raw}"`);
      }
      return n;
    }
  }
}

function enumValue(e: protobuf.Enum, raw: string, where: string): number {
  const byName = Object.entries(e.values).find(([k]) => k.toLowerCase() === raw.toLowerCase());
  if (byName) return byName[1];
  if (/^\d+$/.test(raw) && Object.values(e.values).includes(Number(raw))) return Number(raw);
  throw new RequestArgsError(`${where} takes one of ${Object.keys(e.values).join(', ')}, not "${raw}"`);
}

function messageValue(field: protobuf.Field, type: protobuf.Type, raw: string): unknown {
  let obj: Record<string, unknown>;
  if (raw.trim().startsWith('{')) {
    try {
      obj = JSON.parse(raw) as Record<string, unknown>;
    } catch (err) {
      throw new RequestArgsError(`--${field.name} is not valid JSON: ${(err as Error).message}`);
    }
  } else if (type.name === 'BindMount') {
    const [src_path, dst_path, mode = 'ro', ...extra] = raw.split(':');
    if (!src_path || !dst_path || extra.length) throw new RequestArgsError(`--${field.name} takes SRC:DST[:ro|rw] or JSON, not "${raw}"`);
    obj = { src_path, dst_path, mode: mode.toUpperCase() };
  } else {
    obj = {};
    for (const pair of raw.split(',').filter(Boolean)) {
      const [k, v] = pair.split('=');
      if (!k || v === undefined) throw new RequestArgsError(`--${field.name} takes k=v,k=v or JSON, not "${raw}"`);
      obj[k] = Number(v);
    }
  }
  const unknown = Object.keys(obj).filter((k) => !type.fields[k]);
  if (unknown.length) {
    throw new RequestArgsError(`--${field.name} has no ${unknown.join(', ')}; fields: ${type.fieldsArray.map((f) => f.name).join(', ')}`);
  }
  const problem = type.verify(type.fromObject(obj));
  if (problem) throw new RequestArgsError(`--${field.name}: ${problem}`);
  return type.toObject(type.fromObject(obj), { longs: Number });
}
