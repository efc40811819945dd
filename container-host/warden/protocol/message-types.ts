import type { RequestName } from './types.ts';

/** `Message.Type` numbers (DESIGN §5). A response carries its request's number; 1 is Error. */
export const MESSAGE_TYPES = {
  Error: 1,
  Create: 11,
  Stop: 12,
  Destroy: 13,
  Info: 14,
  Spawn: 21,
  Link: 22,
  Run: 23,
  Stream: 24,
  NetIn: 31,
  NetOut: 32,
  CopyIn: 41,
  CopyOut: 42,
  LimitMemory: 51,
  LimitDisk: 52,
  LimitBandwidth: 53,
  LimitCpu: 54,
  Ping: 91,
  List: 92,
  Echo: 93,
} as const satisfies Record<RequestName | 'Error', number>;

export const ERROR_TYPE = MESSAGE_TYPES.Error;

export const REQUEST_NAMES = Object.keys(MESSAGE_TYPES).filter((n) => n !== 'Error') as RequestName[];

const NAME_BY_NUMBER = new Map<number, RequestName>(REQUEST_NAMES.map((n) => [MESSAGE_TYPES[n], n]));

/** The request name for a type number, or undefined for Error and unknown numbers. */
export function requestNameOf(type: number): RequestName | undefined {
  return NAME_BY_NUMBER.get(type);
}

/** `create`, `limit_memory`, `LimitMemory`, `net-in` → the §5 name; undefined when unknown. */
export function parseRequestName(text: string): RequestName | undefined {
  const squashed = text.replace(/[_-]/g, '').toLowerCase();
  return REQUEST_NAMES.find((n) => n.toLowerCase() === squashed);
}
