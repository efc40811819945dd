/**
 * The stager's EMF metrics as the handler emits them (DESIGN §9, *Telemetry*): Powertools
 * single-metric EMF blobs on stdout in the `dropwarden` namespace, service `stager`:
 * `PhaseDuration` by `Phase` for each phase that ran, `DropletSize` for a droplet,
 * `StagingFailures` by `Reason` for a failure. The suite turns metrics off
 * (vitest.config.ts); this file turns them on while a request is handled.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { StagingResult } from '../../contracts/staging.ts';
import { type TestStack, drain, putApp, sendRaw, startTestStack } from '../support/aws-stack.ts';
import { type RunningStager, startStager } from '../support/stager.ts';
import { zipTree } from '../support/zip.ts';

let stack: TestStack;
let stager: RunningStager;
let appZip: Buffer;

beforeAll(async () => {
  stack = await startTestStack();
  stager = await startStager(stack);
  appZip = await zipTree({ 'app.py': 'print("hi")\n' });
});

afterAll(async () => {
  await stager?.stop();
  await stack?.stop();
});

interface Emf {
  _aws: { Timestamp: number; CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> }> };
  [k: string]: unknown;
}

/** Handles one request with metrics on; its result and every EMF blob written meanwhile. */
async function handled(body: Record<string, unknown> | string): Promise<{ result: StagingResult; emf: Emf[] }> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const lines: string[] = [];
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  const write = process.stdout.write.bind(process.stdout);
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk, ...rest: any[]) => {
    const s = String(chunk);
    if (!s.includes('"_aws"')) return write(chunk, ...rest);
    lines.push(...s.split('\n').filter(Boolean));
    return true;
  });
  try {
    const messageId = await sendRaw(stack.config, text);
    const id = typeof body === 'string' ? messageId : String(body.request_id);
    const got = await drain<StagingResult>(stack.config, stack.config.queues.results, 30_000, (g) => g.some((r) => r.request_id === id));
    await stager.finished(id);
    return { result: got.find((r) => r.request_id === id)!, emf: lines.map((l) => JSON.parse(l) as Emf) };
  } finally {
    spy.mockRestore();
    vi.unstubAllEnvs();
  }
}

/** A blob as {Namespace, Dimensions, Metrics, values}: what CloudWatch makes of it. */
const shape = (b: Emf) => {
  expect(b._aws.CloudWatchMetrics).toHaveLength(1);
  expect(b._aws.Timestamp).toEqual(expect.any(Number));
  const { _aws, ...values } = b;
  return { ..._aws.CloudWatchMetrics[0], values };
};
const phase = (name: string) => ({
  Namespace: 'dropwarden',
  Dimensions: [['service', 'Phase']],
  Metrics: [{ Name: 'PhaseDuration', Unit: 'Milliseconds' }],
  values: { service: 'stager', Phase: name, PhaseDuration: expect.any(Number) },
});
const failure = (reason: string) => ({
  Namespace: 'dropwarden',
  Dimensions: [['service', 'Reason']],
  Metrics: [{ Name: 'StagingFailures', Unit: 'Count' }],
  values: { service: 'stager', Reason: reason, StagingFailures: 1 },
});
const request = (id: string, over: Record<string, unknown>) => ({ request_id: id, app_id: 'metrics', properties: { meta: { command: 'python3 app.py' } }, ...over });

describe('stager metrics (EMF)', () => {
  it('a staged droplet: PhaseDuration per phase, in order, then DropletSize', async () => {
    const { result, emf } = await handled(request('m-ok', { download_uri: await putApp(stack.config, appZip) }));
    expect(result.error).toBeUndefined();
    expect(emf.map(shape)).toEqual([
      ...['download', 'unpack', 'stage', 'pack', 'upload'].map(phase),
      {
        Namespace: 'dropwarden',
        Dimensions: [['service']],
        Metrics: [{ Name: 'DropletSize', Unit: 'Bytes' }],
        values: { service: 'stager', DropletSize: result.droplet!.size },
      },
    ]);
    // The durations are the result's own timings.
    for (const b of emf.slice(0, 5)) expect(b.PhaseDuration).toBe(result.timings_ms[b.Phase as keyof typeof result.timings_ms]);
  });

  it("a plugin failure: the phases that ran, then StagingFailures with the failure's headline as Reason", async () => {
    const { result, emf } = await handled(request('m-fw', { download_uri: await putApp(stack.config, appZip), properties: { framework: 'cobol' } }));
    expect(result.error).toMatch(/^Staging task failed:\n Staging plugin failed: unknown framework "cobol"/);
    const shapes = emf.map(shape);
    expect(shapes.at(-1)).toEqual(failure('Staging plugin failed'));
    expect(shapes.slice(0, -1)).toEqual(Object.keys(result.timings_ms).map(phase));
    expect(shapes.some((s) => s.Metrics[0].Name === 'DropletSize')).toBe(false);
  });

  it('an invalid request: StagingFailures with Reason invalid_request, and no phase', async () => {
    const { result, emf } = await handled({ request_id: 'm-bad', app_id: 'metrics' });
    expect(result.error).toMatch(/Invalid staging request: .*download_uri/);
    expect(emf.map(shape)).toEqual([failure('invalid_request')]);
  });
});
