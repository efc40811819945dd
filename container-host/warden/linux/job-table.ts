import { WardenError } from '../server/service.ts';

/**
 * A container's jobs not yet consumed (info's job_ids). Link and stream take a job out; one cut
 * short puts it back, so it stays linkable (DESIGN §5).
 */
export class JobTable<J> {
  readonly #jobs = new Map<number, J>();

  add(id: number, job: J): void {
    this.#jobs.set(id, job);
  }

  /** Takes the job out of the table: `no such job` when it is not there (consumed, or never spawned). */
  take(id: number): J {
    const job = this.#jobs.get(id);
    if (job === undefined) throw new WardenError('no_such_job', 'no such job');
    this.#jobs.delete(id);
    return job;
  }

  ids(): number[] {
    return [...this.#jobs.keys()].sort((a, b) => a - b);
  }
}
