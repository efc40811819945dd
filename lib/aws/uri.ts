/** Where an object lives: an S3 bucket/key, or a plain (e.g. pre-signed) HTTP(S) URL. */
export type ObjectLocation = { kind: 's3'; bucket: string; key: string } | { kind: 'http'; url: string };

export function parseObjectUri(uri: string): ObjectLocation {
  if (uri.startsWith('s3://')) {
    const rest = uri.slice('s3://'.length);
    const slash = rest.indexOf('/');
    if (slash <= 0 || slash === rest.length - 1) {
      throw new Error(`"${uri}" is not an s3://bucket/key URI`);
    }
    let key: string;
    try {
      key = decodeURIComponent(rest.slice(slash + 1));
    } catch {
      throw new Error(`"${uri}" has a malformed %-escape in its key`);
    }
    return { kind: 's3', bucket: rest.slice(0, slash), key };
  }
  if (/^https?:\/\//.test(uri)) return { kind: 'http', url: uri };
  throw new Error(`"${uri}" is neither an s3:// URI nor an https:// URL`);
}

export function s3Uri(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

/** For logs and task logs: never print a pre-signed URL's signature. */
export function redactUri(uri: string): string {
  if (!/^https?:\/\//.test(uri)) return uri;
  const u = new URL(uri);
  return u.search ? `${u.origin}${u.pathname}?…` : uri;
}
