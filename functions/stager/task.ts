/**
 * The staging task: download → unpack → stage → pack → upload, in a workspace of its own,
 * under one deadline. It only sequences and times the phases; each phase is its own module.
 * Terminal failures come back as a result with `error`, rendered from the `failure` returned
 * beside it; retryable ones are thrown.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { FAILURE_PREFIX, type Phase, type StagingRequest, type StagingResult } from '../../contracts/staging.ts';
import { s3Uri } from '../../lib/aws/uri.ts';
import type { StagerConfig } from './config.ts';
import { type Failure, PhaseError, StagingTimeoutError, classify, failureOf, failureText } from './errors.ts';
import { buildCache } from './cache.ts';
import { type ArchiveDownload, startDownload } from './phases/download.ts';
import { pack } from './phases/pack.ts';
import { stage } from './phases/stage.ts';
import { type UnpackStats, unpack } from './phases/unpack.ts';
import { upload } from './phases/upload.ts';
import { TaskLog } from './task-log.ts';
import { requestUriViolation } from './uri-policy.ts';

export interface TaskProgress {
  phase(phase: Phase): void;
  bytes?(phase: Phase, done: number, total?: number): void;
}

export interface TaskDeps {
  config: StagerConfig;
  s3: S3Client;
  log: TaskLog;
  progress?: TaskProgress;
  onPhaseTimed?: (phase: Phase, ms: number) => void;
  /**
   * Takes the workspace removal instead of awaiting it, so the caller can send the result
   * first (removing 10 000 files is slow on some filesystems). Without it, the task removes
   * the workspace before it returns.
   */
  deferCleanup?: (cleanup: () => Promise<void>) => void;
  /**
   * A build (DESIGN §8): the droplet goes to this droplets-bucket key, for the stager to check
   * and publish (functions/stager/publish.ts), instead of where the request asked.
   */
  buildKey?: string;
}

export function defaultDropletUri(config: StagerConfig, appId: string | number, sha256: string): string {
  return s3Uri(config.stack.buckets.droplets, `${appId}/${sha256}.tgz`);
}

/** The task's answer: the result to send and, when it failed, why (its `error` is rendered from that). */
export interface TaskOutcome {
  result: StagingResult;
  failure?: Failure;
}

export async function runStagingTask(request: StagingRequest, requestId: string, deps: TaskDeps): Promise<TaskOutcome> {
  const { config, log } = deps;
  const taskId = randomUUID();
  const timings: StagingResult['timings_ms'] = {};
  const workDir = join(config.workRoot, taskId);
  const dropletDir = join(workDir, 'droplet');
  const appDir = join(dropletDir, 'app');

  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new StagingTimeoutError(config.deadlineSeconds)), config.deadlineSeconds * 1000);
  const signal = deadline.signal;

  const timed = async <T>(phase: Phase, headline: string, fn: () => Promise<T>): Promise<T> => {
    log.info(headline);
    deps.progress?.phase(phase);
    const started = performance.now();
    try {
      return await fn();
    } catch (err) {
      throw classify(err, { phase, signal });
    } finally {
      const ms = Math.round(performance.now() - started);
      timings[phase] = ms;
      // Each phase leaves tens of MB of dead buffers; where the runtime allows it (the local
      // worker runs with --expose-gc), collect them before the next phase allocates its own.
      (globalThis as { gc?: () => void }).gc?.();
      deps.onPhaseTimed?.(phase, ms);
    }
  };

  const base = { request_id: requestId, app_id: request.app_id, task_id: taskId };
  let cacheSaved: Promise<void> | undefined;
  try {
    // Nothing is fetched or written for a request that names a place it may not.
    const refused = requestUriViolation(request, config);
    if (refused) throw new PhaseError('request', refused);
    await mkdir(appDir, { recursive: true });
    const zipPath = join(workDir, 'app.zip');
    // Download and unpack overlap: entries are unpacked as their bytes arrive (their timings
    // overlap too). Either failing stops the other.
    const fetching = new AbortController();
    const fetchSignal = AbortSignal.any([signal, fetching.signal]);
    let arriving: ArchiveDownload | undefined;
    let unpacking: Promise<UnpackStats> | undefined;
    try {
      const got = await timed('download', 'Downloading application', async () => {
        arriving = await startDownload({
          uri: request.download_uri,
          dest: zipPath,
          s3: deps.s3,
          urls: config.urls,
          maxBytes: config.unpack.maxTotalBytes,
          signal: fetchSignal,
          onProgress: (n, total) => deps.progress?.bytes?.('download', n, total),
        });
        const archive = arriving.archive;
        unpacking = timed('unpack', 'Unpacking application', () => unpack({ archive, destDir: appDir, limits: config.unpack, signal }));
        unpacking.catch(() => fetching.abort());
        return arriving.done;
      });
      log.info(`Downloaded ${got.bytes} bytes`);
    } catch (err) {
      // The unpack's own failure says more than the download it cut short.
      if (unpacking && fetching.signal.aborted && !signal.aborted) await unpacking;
      throw err;
    } finally {
      await unpacking?.catch(() => {});
      await arriving?.close();
    }
    const unpacked = await unpacking!;
    await rm(zipPath, { force: true });
    log.info(`Unpacked ${unpacked.files} files, ${unpacked.bytes} bytes`);
    // The app's build cache: restored before staging, saved (beside pack and upload) after it
    // succeeded; it logs and carries on when it fails. Its lines stay out of the droplet.
    const cache = buildCache({
      s3: deps.s3,
      bucket: config.stack.buckets.cache,
      appId: request.app_id,
      dir: join(workDir, 'cache'),
      maxBytes: config.cacheMaxBytes,
      purge: request.properties.purge_cache === true,
      partSizeBytes: config.partSizeBytes,
      signal,
      log: (m) => log.transient(m),
    });
    await cache.restore();
    const info = await timed('stage', 'Staging application', () =>
      stage({
        dropletDir,
        properties: request.properties,
        log: (m) => log.info(m),
        signal,
        cacheDir: cache.dir,
        plugins: config.plugins,
        hideFromPrograms: [config.workRoot],
      }),
    );
    cacheSaved = cache.save();
    cacheSaved.catch(() => {}); // awaited below; only the deadline's abort rejects it
    const droplet = await timed('pack', 'Creating droplet', async () => {
      await writeFile(join(dropletDir, 'logs', 'staging.log'), log.messages());
      return pack({ dropletDir, dest: join(workDir, 'droplet.tgz'), gzipLevel: config.gzipLevel, signal });
    });
    log.info(`Droplet is ${droplet.size} bytes, sha256 ${droplet.sha256}`);
    const uri = deps.buildKey ? s3Uri(config.stack.buckets.droplets, deps.buildKey) : (request.upload_uri ?? defaultDropletUri(config, request.app_id, droplet.sha256));
    const sent = await timed('upload', 'Uploading droplet', () =>
      upload({
        droplet,
        uri,
        s3: deps.s3,
        urls: config.urls,
        partSizeBytes: config.partSizeBytes,
        concurrency: config.uploadConcurrency,
        contentAddressed: !deps.buildKey && request.upload_uri === undefined,
        signal,
        onProgress: (n, total) => deps.progress?.bytes?.('upload', n, total),
      }),
    );
    log.info(sent.skipped ? 'Droplet already uploaded (same content)' : 'Uploaded droplet');
    await cacheSaved;
    return {
      result: {
        ...base,
        task_log: log.toString(),
        droplet: { uri, sha256: droplet.sha256, sha1: droplet.sha1, size: droplet.size },
        staging_info: info,
        timings_ms: timings,
      },
    };
  } catch (err) {
    // A retryable failure is thrown on; any other is answered, so the request gets its one result.
    const failure = failureOf(err);
    const message = failureText(failure);
    log.info(message);
    return { result: { ...base, task_log: log.toString(), error: FAILURE_PREFIX + message, timings_ms: timings }, failure };
  } finally {
    clearTimeout(timer);
    await cacheSaved?.catch(() => {});
    const cleanup = () => rm(workDir, { recursive: true, force: true });
    if (deps.deferCleanup) deps.deferCleanup(cleanup);
    else await cleanup().catch(() => {}); // a workspace that cannot be removed must not lose the result
  }
}
