import protobuf from 'protobufjs';
import { MessageDecodeError, MessageEncodeError, UnknownMessageTypeError } from './errors.ts';
import { ERROR_TYPE, MESSAGE_TYPES, requestNameOf } from './message-types.ts';
import { envelopeType, errorResponseType, requestType, responseType, type MessageType } from './schema.ts';
import type { ErrorResponse, RequestName, RequestOf, ResponseOf } from './types.ts';

/**
 * Envelope payloads (`Message { type, payload }`) to and from plain message objects.
 * Presence is kept both ways: only own, non-undefined keys are encoded (so `exit_status: 0` is
 * written) and decoding yields only the fields that were on the wire. Bytes stay Buffers.
 */

type Plain = Record<string, unknown>;

/** What to do with a required field the caller left out. */
type MissingRequired = 'throw' | 'default';

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, arrays: true };

function defaultFor(field: protobuf.Field): unknown {
  if (field.resolvedType instanceof protobuf.Type) return {};
  if (field.resolvedType instanceof protobuf.Enum) return Object.values(field.resolvedType.values)[0];
  switch (field.type) {
    case 'string':
      return '';
    case 'bytes':
      return Buffer.alloc(0);
    case 'bool':
      return false;
    default:
      return 0;
  }
}

/**
 * A copy of `value` that protobufjs encodes as intended: unknown keys refused, strings given for
 * bytes fields turned into their UTF-8 bytes (protobufjs would otherwise read them as base64),
 * required fields present.
 */
function normalize(type: MessageType, value: unknown, missing: MissingRequired, path: string): Plain {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new MessageEncodeError(type.name, `${path || 'message'} must be an object`);
  }
  const input = value as Plain;
  for (const key of Object.keys(input)) {
    if (!type.fields[key] && input[key] !== undefined) {
      throw new MessageEncodeError(type.name, `unknown field ${path}${key}`);
    }
  }
  const out: Plain = {};
  for (const field of type.fieldsArray) {
    let v = Object.hasOwn(input, field.name) ? input[field.name] : undefined;
    if (v === undefined || v === null) {
      if (!field.required) continue;
      if (missing === 'throw') throw new MessageEncodeError(type.name, `missing required field ${path}${field.name}`);
      v = defaultFor(field);
    }
    const one = (item: unknown, at: string): unknown => {
      if (field.resolvedType instanceof protobuf.Type) return normalize(field.resolvedType, item, missing, `${at}.`);
      if (field.type === 'bytes' && typeof item === 'string') return Buffer.from(item, 'utf8');
      return item;
    };
    if (field.repeated) {
      if (!Array.isArray(v)) throw new MessageEncodeError(type.name, `${path}${field.name} must be an array`);
      out[field.name] = v.map((item, i) => one(item, `${path}${field.name}[${i}]`));
    } else {
      out[field.name] = one(v, `${path}${field.name}`);
    }
  }
  const problem = type.verify(out);
  if (problem) throw new MessageEncodeError(type.name, problem);
  return out;
}

function encodeBody(type: MessageType, body: unknown, missing: MissingRequired): Uint8Array {
  return type.encode(normalize(type, body, missing, '')).finish();
}

function envelope(type: number, payload: Uint8Array): Buffer {
  const bytes = envelopeType.encode({ type, payload }).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

function decodeBody(type: MessageType, payload: Uint8Array): Plain {
  try {
    return type.toObject(type.decode(payload), TO_OBJECT) as Plain;
  } catch (err) {
    throw new MessageDecodeError(type.name, err instanceof Error ? err.message : String(err));
  }
}

/** A request's envelope payload; a missing required field is the caller's mistake and throws. */
export function encodeRequest<K extends RequestName>(name: K, request: RequestOf<K>): Buffer {
  return envelope(MESSAGE_TYPES[name], encodeBody(requestType(name), request, 'throw'));
}

/** A response's envelope payload; required fields are always written (defaults when left out). */
export function encodeResponse<K extends RequestName>(name: K, response: ResponseOf<K>): Buffer {
  return envelope(MESSAGE_TYPES[name], encodeBody(responseType(name), response, 'default'));
}

export function encodeErrorResponse(error: ErrorResponse): Buffer {
  return envelope(ERROR_TYPE, encodeBody(errorResponseType, error, 'default'));
}

export interface Envelope {
  type: number;
  payload: Buffer;
}

/**
 * Read by hand rather than through the `Message` type: protobufjs drops an enum number it does
 * not know, and an unknown type must reach the caller as UnknownMessageTypeError, not "missing".
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  let type: number | undefined;
  let payload: Buffer | undefined;
  try {
    const reader = protobuf.Reader.create(bytes);
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag === 0x08) type = reader.uint32();
      else if (tag === 0x12) payload = Buffer.from(reader.bytes());
      else reader.skipType(tag & 7);
    }
  } catch (err) {
    throw new MessageDecodeError(envelopeType.name, err instanceof Error ? err.message : String(err));
  }
  if (type === undefined) throw new MessageDecodeError(envelopeType.name, "missing required 'type'");
  if (payload === undefined) throw new MessageDecodeError(envelopeType.name, "missing required 'payload'");
  return { type, payload };
}

export type DecodedRequest = { [K in RequestName]: { name: K; request: RequestOf<K> } }[RequestName];

/** Throws MessageDecodeError or UnknownMessageTypeError; the envelope type is kept on both. */
export function decodeRequest(bytes: Uint8Array): DecodedRequest {
  const { type, payload } = decodeEnvelope(bytes);
  const name = requestNameOf(type);
  if (!name) throw new UnknownMessageTypeError(type);
  return { name, request: decodeBody(requestType(name), payload) } as DecodedRequest;
}

export type DecodedResponse = { type: number; error: ErrorResponse } | { type: number; name: RequestName; response: Plain };

export function decodeResponse(bytes: Uint8Array): DecodedResponse {
  const { type, payload } = decodeEnvelope(bytes);
  if (type === ERROR_TYPE) return { type, error: decodeBody(errorResponseType, payload) as ErrorResponse };
  const name = requestNameOf(type);
  if (!name) throw new UnknownMessageTypeError(type);
  return { type, name, response: decodeBody(responseType(name), payload) };
}
