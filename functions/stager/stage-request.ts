/**
 * One request staged the way DESIGN §8 splits it. With a builder (the builder function on AWS),
 * the builder runs the untrusted build and leaves its droplet at the request's build key, and
 * the stager checks it and publishes it where the request asked (publish.ts), under the same
 * deadline. Without one, the task runs in this process (its programs in the sandbox) and
 * uploads its own droplet where the request asked: bytes this process packed need no check.
 */
import { buildDropletKey, DEFAULT_BUILDS_PREFIX } from '../../contracts/builder.ts';
import { FAILURE_PREFIX, PHASES, type StagingRequest, type StagingResult } from '../../contracts/staging.ts';
import type { Builder } from './builder/builder.ts';
import { StagingTimeoutError, failureOf, failureText } from './errors.ts';
import { publish } from './publish.ts';
import { type TaskDeps, type TaskOutcome, defaultDropletUri, runStagingTask } from './task.ts';

export async function stageRequest(request: StagingRequest, requestId: string, deps: Omit<TaskDeps, 'buildKey'> & { builder?: Builder }): Promise<TaskOutcome> {
  const { config, log, builder } = deps;
  if (!builder) return runStagingTask(request, requestId, deps);
  const started = Date.now();
  const buildKey = buildDropletKey(DEFAULT_BUILDS_PREFIX, requestId);
  const base = { request_id: requestId, app_id: request.app_id, task_id: buildKey.split('/')[1], timings_ms: {} };
  let built: TaskOutcome;
  try {
    built = await builder.build({ request, requestId, buildKey, deadlineSeconds: config.deadlineSeconds, log });
  } catch (err) {
    // A builder that could not be reached, or answered nonsense, still gets this request its
    // one result; only a transient failure is thrown on (failureOf), to be retried.
    return answered(base, err);
  }
  const reported = built.result.droplet;
  if (!reported || built.result.error) return timed(built);

  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new StagingTimeoutError(config.deadlineSeconds)), Math.max(1, config.deadlineSeconds * 1000 - (Date.now() - started)));
  const publishStarted = performance.now();
  const uri = request.upload_uri ?? defaultDropletUri(config, request.app_id, reported.sha256);
  try {
    const published = await publish({
      config,
      s3: deps.s3,
      buildKey,
      built: reported,
      uri,
      contentAddressed: request.upload_uri === undefined,
      scratchDir: config.workRoot,
      signal: deadline.signal,
      onProgress: (n, total) => deps.progress?.bytes?.('upload', n, total),
    });
    log.info(published.skipped ? 'Checked the droplet; the same content was already published' : 'Checked and published the droplet');
    const ms = Math.round(performance.now() - publishStarted);
    return timed({
      result: {
        ...built.result,
        task_log: log.toString(),
        droplet: published.droplet,
        timings_ms: { ...built.result.timings_ms, upload: (built.result.timings_ms.upload ?? 0) + ms },
      },
    });
  } catch (err) {
    const { droplet: _unpublished, staging_info: _info, ...rest } = built.result;
    return answered(rest, err);
  } finally {
    clearTimeout(timer);
  }

  /** The failure result for `err` (a retryable one is thrown on by failureOf). */
  function answered(result: Pick<StagingResult, 'request_id' | 'app_id' | 'task_id' | 'timings_ms'>, err: unknown): TaskOutcome {
    const failure = failureOf(err);
    const message = failureText(failure);
    log.info(message);
    return timed({ result: { ...result, task_log: log.toString(), error: FAILURE_PREFIX + message }, failure });
  }

  /** Each phase's time, once, in order: the build's (here or in the builder function), its upload and the publish as one. */
  function timed(outcome: TaskOutcome): TaskOutcome {
    for (const phase of PHASES) {
      const ms = outcome.result.timings_ms[phase];
      if (ms !== undefined) deps.onPhaseTimed?.(phase, ms);
    }
    return outcome;
  }
}
