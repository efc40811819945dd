/**
 * Where a message's URIs may point: a setting that lists places, each `s3://BUCKET` (any key
 * of that bucket, within the caller's further rules) or `https` (an https:// URL to a public
 * address, lib/net/public-http.ts). Parsed once, where a process reads its settings.
 */
import { parseObjectUri } from '../aws/uri.ts';

export interface Places {
  buckets: string[];
  https: boolean;
}

export class PlacesSettingError extends Error {
  override name = 'PlacesSettingError';
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** `raw` (comma-separated) or, when unset, `fallback`; empty entries (an unset bucket) are dropped. */
export function parsePlaces(name: string, raw: string | undefined, fallback: string[]): Places {
  const entries = (raw === undefined || raw.trim() === '' ? fallback : raw.split(',')).map((e) => e.trim()).filter(Boolean);
  const places: Places = { buckets: [], https: false };
  for (const entry of entries) {
    if (entry === 'https') places.https = true;
    else if (entry.startsWith('s3://') && BUCKET.test(entry.slice(5).replace(/\/$/, ''))) places.buckets.push(entry.slice(5).replace(/\/$/, ''));
    else if (raw !== undefined) throw new PlacesSettingError(`${name}: "${entry}" is neither s3://BUCKET nor https`);
  }
  return places;
}

export function describePlaces(places: Places): string {
  const all = [...places.buckets.map((b) => `s3://${b}/…`), ...(places.https ? ['an https:// URL to a public address'] : [])];
  return all.length ? all.join(' or ') : 'nowhere (none is allowed)';
}

export type PlaceCheck = { ok: true; location: ReturnType<typeof parseObjectUri> } | { ok: false; reason: string };

/** The URI parsed, when it names one of `places`; else why not. `allowHttp` (tests only) lets http:// pass as https:// does. */
export function checkPlace(uri: string, places: Places, setting: string, allowHttp = false): PlaceCheck {
  let location;
  try {
    location = parseObjectUri(uri);
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  const allowed = `allowed: ${describePlaces(places)} (${setting})`;
  if (location.kind === 'http') {
    if (!places.https || !(/^https:\/\//i.test(uri) || allowHttp)) return { ok: false, reason: `${shownScheme(uri)} URLs are not allowed; ${allowed}` };
    return { ok: true, location };
  }
  if (!places.buckets.includes(location.bucket)) return { ok: false, reason: `the bucket ${location.bucket} is not allowed; ${allowed}` };
  return { ok: true, location };
}

const shownScheme = (uri: string) => `${/^[a-z0-9+.-]*:/i.exec(uri)?.[0] ?? ''}//`;
