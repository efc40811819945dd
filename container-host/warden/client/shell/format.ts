/** Responses for people: `field : value` lines; bytes shown as text when they are UTF-8. */

const utf8 = new TextDecoder('utf-8', { fatal: true });

function bytesText(b: Uint8Array): string {
  try {
    return utf8.decode(b);
  } catch {
    return `0x${Buffer.from(b).toString('hex')}`;
  }
}

/** JSON with each Buffer as its UTF-8 text, or {"base64": …} when it is not UTF-8. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      const b = Buffer.from((v as { data: number[] }).data);
      try {
        return utf8.decode(b);
      } catch {
        return { base64: b.toString('base64') };
      }
    }
    return v;
  });
}

export function formatResponse(response: Record<string, unknown>): string {
  const entries = Object.entries(response).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0));
  if (entries.length === 0) return 'ok';
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries
    .map(([k, v]) => {
      let text: string;
      if (Buffer.isBuffer(v)) text = bytesText(v);
      else if (Array.isArray(v)) text = v.map((x) => (Buffer.isBuffer(x) ? bytesText(x) : String(x))).join(', ');
      else if (v && typeof v === 'object') text = toJson(v);
      else text = String(v);
      return `${k.padEnd(width)} : ${text.replace(/\n$/, '')}`;
    })
    .join('\n');
}
