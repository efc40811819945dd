import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { RequestName } from './types.ts';

/** warden.proto, loaded once with field names kept as written (snake_case, as in DESIGN §5). */
const root = new protobuf.Root();
root.loadSync(fileURLToPath(new URL('./warden.proto', import.meta.url)), { keepCase: true });
root.resolveAll();

export type MessageType = protobuf.Type;

export const envelopeType: MessageType = root.lookupType('warden.Message');
export const errorResponseType: MessageType = root.lookupType('warden.ErrorResponse');

export function requestType(name: RequestName): MessageType {
  return root.lookupType(`warden.${name}Request`);
}

export function responseType(name: RequestName): MessageType {
  return root.lookupType(`warden.${name}Response`);
}
