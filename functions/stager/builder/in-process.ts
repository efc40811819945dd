/**
 * The local builder: the build runs in the stager's own process, with its S3 client. Its
 * programs run in the namespaces sandbox (DESIGN §8), which reaches no address of the host, so
 * they hold no authority over the stack's objects; the build code itself is the stager's own.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { StagerConfig } from '../config.ts';
import { runStagingTask } from '../task.ts';
import type { Builder } from './builder.ts';

export function inProcessBuilder(config: StagerConfig, s3: S3Client): Builder {
  return {
    build: (input) =>
      runStagingTask(input.request, input.requestId, {
        config: { ...config, deadlineSeconds: input.deadlineSeconds },
        s3,
        log: input.log,
        progress: input.progress,
        onPhaseTimed: input.onPhaseTimed,
        deferCleanup: input.deferCleanup,
        buildKey: input.buildKey,
      }),
  };
}
