/**
 * Handles are bytes on the wire and strings in the WardenService. latin1 maps each byte to one
 * UTF-16 code unit and back, so any handle a client sends comes back byte-identical (a UTF-8
 * decode would replace invalid sequences and merge distinct handles).
 */
export function handleToService(handle: Buffer): string {
  return handle.toString('latin1');
}

export function handleToWire(handle: string): Buffer {
  return Buffer.from(handle, 'latin1');
}
