/**
 * The codes wardend puts in `ErrorResponse.data` (DESIGN §5), beside the original message. The
 * message stays byte for byte what original clients match on; code that ships with wardend (the
 * agent) matches the code instead. The one place the set is defined: wardend and the agent are
 * two processes that must agree on it.
 */
export const WARDEN_ERROR_CODES = [
  /** `unknown handle` */
  'unknown_handle',
  /** `container with handle: <h> already exists.` */
  'handle_exists',
  /** a handle that cannot name a depot directory */
  'invalid_handle',
  /** `Container state must be one of '<a>', …, current state is '<s>'` */
  'bad_state',
  /** `no such job` */
  'no_such_job',
  /** a request this warden cannot do with the arguments given (bind mounts, rootfs, net_in/net_out specs, copy_out owner) */
  'bad_request',
  /** limit_disk on a warden running with `disk: false` */
  'not_supported:disk',
  /** a network request on a warden running with `network: false`, or on a container without a network */
  'not_supported:network',
  /** limit_memory below what the container uses and the kernel cannot reclaim */
  'limit_below_usage',
  /** `Could not acquire network` */
  'no_network',
  /** `no port available` */
  'no_port',
  /** the uid pool is exhausted */
  'no_uid',
  /** a host-side step failed (`<request> failed: …`, a copy, an iptables chain) */
  'host_failure',
] as const;

export type WardenErrorCode = (typeof WARDEN_ERROR_CODES)[number];

const KNOWN: ReadonlySet<string> = new Set(WARDEN_ERROR_CODES);

/** `data` as received: a code this side knows, or undefined (an older wardend, or none sent). */
export function wardenErrorCode(data: string | undefined): WardenErrorCode | undefined {
  return data !== undefined && KNOWN.has(data) ? (data as WardenErrorCode) : undefined;
}
