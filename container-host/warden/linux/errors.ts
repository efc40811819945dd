import { WardenError } from '../server/service.ts';

/** A host-side step failed (a command, a cgroup write): says what, with what the host said. */
export class HostError extends Error {
  override name = 'HostError';
  readonly step: string;
  readonly detail: string;
  constructor(step: string, detail: string) {
    super(`${step}: ${detail.trim() || 'no detail'}`);
    this.step = step;
    this.detail = detail;
  }
}

/** The host lacks something the backend needs (a binary, a cgroup controller, overlayfs). */
export class HostRequirementError extends Error {
  override name = 'HostRequirementError';
}

/**
 * Runs one request's host work: host failures reach the client as WardenErrors that say what
 * failed (`<request> failed: …`, code `host_failure`); WardenErrors and anything else pass as they are.
 */
export async function mapHostErrors<T>(request: string, work: () => T | Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    throw asWardenError(request, e);
  }
}

export function asWardenError(request: string, e: unknown): Error {
  if (e instanceof WardenError) return e;
  if (e instanceof HostError || e instanceof HostRequirementError) return new WardenError('host_failure', `${request} failed: ${e.message}`);
  return e as Error;
}
