import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { expect, it } from 'vitest';
import { stagerConfigFromEnv } from '../../functions/stager/config.ts';
import { runStagingTask } from '../../functions/stager/task.ts';
import { TaskLog } from '../../functions/stager/task-log.ts';

it('answers a failure that retrying cannot mend (no workspace can be made) with a result, not a retry', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dw-task-'));
  try {
    const notADir = join(dir, 'file');
    writeFileSync(notADir, '');
    const config = stagerConfigFromEnv({
      DROPWARDEN_RESULTS_QUEUE_URL: 'http://127.0.0.1:1/q',
      DROPWARDEN_DROPLETS_BUCKET: 'droplets',
      DROPWARDEN_APPS_BUCKET: 'apps',
      DROPWARDEN_WORK_DIR: notADir,
    });
    const { result, failure } = await runStagingTask({ app_id: 'a', download_uri: 's3://apps/a.zip', properties: {} }, 'r1', {
      config,
      s3: new S3Client({ region: 'us-east-1' }),
      log: new TaskLog(),
    });
    expect(result.error).toMatch(/^Staging task failed:\n Internal stager error: ENOTDIR/);
    // The text is rendered from the failure the task returns beside it.
    expect(failure).toEqual({ phase: 'internal', reason: expect.stringMatching(/^ENOTDIR/) });
    expect(result.droplet).toBeUndefined();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
