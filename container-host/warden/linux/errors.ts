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
