/**
 * The builder Lambda function (DESIGN §8): a BuildJob in, a BuildReport out. Its own role
 * allows logs only; the job's credentials reach exactly one request's objects. Before it
 * answers, it resets its execution environment (environment-reset.ts), so that the next
 * invocation, which may be another tenant's, finds no process and no file of this one.
 */
import { BuildJob, type BuildReport } from '../../contracts/builder.ts';
import { liveLogKey } from '../../contracts/bucket-keys.ts';
import { SETTING } from '../../contracts/settings.ts';
import { scopedS3Client } from '../../lib/aws/clients.ts';
import { type StagerConfig, stagerConfigFromEnv } from '../stager/config.ts';
import { resetOrEnd } from '../stager/environment-reset.ts';
import { LiveLog } from '../stager/live-log.ts';
import { TaskLog } from '../stager/task-log.ts';
import { logger } from '../stager/telemetry.ts';
import { prepareWorkRoot } from '../stager/work-root.ts';
import { runBuild } from './build.ts';

export interface BuilderHandlerOptions {
  config: StagerConfig;
  /** Emptied after every build: Lambda's /tmp. */
  tmpDir: string;
}

export function createBuilderHandler({ config, tmpDir }: BuilderHandlerOptions): (event: unknown) => Promise<BuildReport> {
  let prepared: Promise<void> | undefined;
  return async (event) => {
    const job = BuildJob.parse(event);
    prepared ??= prepareWorkRoot(config.workRoot);
    await prepared;
    const s3 = scopedS3Client(config.stack, job.credentials);
    const log = new TaskLog();
    const live = new LiveLog({
      s3,
      bucket: config.stack.buckets.droplets,
      key: liveLogKey(config.liveLogPrefix, job.request_id),
      text: () => log.toString(),
      onError: (err) => logger.debug('Publishing the live log failed', { error: err.message }),
    });
    log.onLine(() => live.touch());
    try {
      return await runBuild(job, { config, s3, log });
    } finally {
      await live.close();
      s3.destroy();
      await resetOrEnd({ tmpDir, workRoot: config.workRoot, log: logger });
    }
  };
}

/**
 * The Lambda entry point, and the builder's composition root: settings read once. The builder
 * sends no message; the results queue is named only because the stack's settings always name it.
 */
export const handler = createBuilderHandler({ config: stagerConfigFromEnv({ [SETTING.resultsQueueUrl]: 'none', ...process.env }), tmpDir: '/tmp' });
