/**
 * Where a staging request may read its app and write its droplet (README "Settings"): checked
 * before the task starts, so a request that names another place gets a terminal `Invalid
 * staging request` naming the rule, and nothing is fetched or written. The phases check the
 * network side again as they connect (public addresses only, every redirect).
 */
import type { StagingRequest } from '../../contracts/staging.ts';
import { checkPlace } from '../../lib/net/places.ts';
import { redactUri } from '../../lib/aws/uri.ts';
import type { StagerConfig } from './config.ts';

const CONTROL = /[\u0000-\u001f\u007f]/;

/** Why the request's URIs are not allowed, or undefined. */
export function requestUriViolation(request: StagingRequest, config: StagerConfig): string | undefined {
  const download = checkPlace(request.download_uri, config.downloadFrom, 'DROPWARDEN_DOWNLOAD_FROM', config.urls.allowHttp);
  if (!download.ok) return `download_uri ${redactUri(request.download_uri)}: ${download.reason}`;
  if (request.upload_uri === undefined) return undefined;
  const shown = redactUri(request.upload_uri);
  const upload = checkPlace(request.upload_uri, config.uploadTo, 'DROPWARDEN_UPLOAD_TO', config.urls.allowHttp);
  if (!upload.ok) return `upload_uri ${shown}: ${upload.reason}`;
  if (upload.location.kind !== 's3') return undefined;
  const why = uploadKeyViolation(upload.location.key, String(request.app_id), [config.claimsPrefix, config.liveLogPrefix]);
  return why && `upload_uri ${shown}: ${why}`;
}

/**
 * A droplet key in an allowed bucket: under the app's own prefix (one app never overwrites
 * another's droplets, or the stager's own claims and live logs), a plain path (no empty, "."
 * or ".." segments, no control characters, at most S3's 1024 bytes) and not of the form of a
 * content address, which names its bytes (`<app_id>/<sha256>.tgz`, written only by the stager).
 */
export function uploadKeyViolation(key: string, appId: string, reservedPrefixes: string[]): string | undefined {
  const rule = `an s3:// upload_uri names a key under "${appId}/" (the app's own), of plain segments, other than a content address "${appId}/<sha256>.tgz"`;
  const reserved = reservedPrefixes.find((p) => key.startsWith(p));
  if (reserved) return `the key is under ${reserved}, which the stager keeps for itself; ${rule}`;
  if (!key.startsWith(`${appId}/`)) return `the key is not under "${appId}/"; ${rule}`;
  if (Buffer.byteLength(key) > 1024) return `the key is over S3's 1024 bytes; ${rule}`;
  if (CONTROL.test(key) || key.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    return `the key has an empty, "." or ".." segment or a control character; ${rule}`;
  }
  if (/^[^/]+\/[0-9a-f]{64}\.tgz$/.test(key)) return `the key has the form of a content address (leave upload_uri out to get one); ${rule}`;
  return undefined;
}
