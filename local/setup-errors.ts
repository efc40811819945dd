/** A set-up step that builds something (a runtime bundle, wardend's seccomp helper) failed: says which, with its last output. */
export class SetupBuildError extends Error {
  override name = 'SetupBuildError';
}
