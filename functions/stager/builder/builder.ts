/**
 * The builder port (DESIGN §8): who runs a staging's untrusted build for the stager. It gets the
 * request and the key its droplet must go to, and answers like the task does: a result (with
 * the droplet it reports having left at that key) and, when it failed, why. A transient failure
 * is thrown as a RetryableError.
 */
import type { StagingRequest } from '../../../contracts/staging.ts';
import type { TaskOutcome } from '../task.ts';
import type { TaskLog } from '../task-log.ts';

export interface BuildInput {
  request: StagingRequest;
  requestId: string;
  /** The droplets-bucket key the build uploads its droplet to. */
  buildKey: string;
  /** Seconds the build may take. */
  deadlineSeconds: number;
  /** The builder's lines join it (as it writes them, or when it answers). */
  log: TaskLog;
}

export interface Builder {
  build(input: BuildInput): Promise<TaskOutcome>;
}
