import { describe, expect, it } from 'vitest';
import { APP_ID_RULE } from '../../contracts/common.ts';
import { StartRequest, StopRequest } from '../../contracts/instances.ts';
import { StagingRequest, describeSchemaError } from '../../contracts/staging.ts';

it('accepts a Cloud Foundry v1-shaped request and keeps unknown fields', () => {
  const v1 = {
    app_id: 42,
    download_uri: 'https://cc.example.com/staging/apps/42?sig=abc',
    upload_uri: 'https://cc.example.com/staging/droplets/42',
    properties: {
      framework: 'sinatra',
      runtime: 'ruby19',
      services: [{ label: 'mysql-5.1' }],
      resources: { memory: 128, disk: 2048, fds: 256 },
      environment: ['RACK_ENV=production'],
      meta: {},
    },
    async: true,
  };
  const parsed = StagingRequest.parse(v1);
  expect(parsed.app_id).toBe(42);
  expect((parsed as Record<string, unknown>).async).toBe(true);
  expect(parsed.properties.framework).toBe('sinatra');
});

it('defaults properties to an empty object', () => {
  expect(StagingRequest.parse({ app_id: 'a', download_uri: 's3://apps/a.zip' }).properties).toEqual({});
});

it('names every offending field', () => {
  const r = StagingRequest.safeParse({ app_id: '', download_uri: 'ftp://x/y', properties: { environment: ['no equals'] } });
  expect(r.success).toBe(false);
  const text = describeSchemaError(r.error!);
  expect(text).toContain('app_id');
  expect(text).toContain('download_uri: download_uri must be an s3://bucket/key or an https:// URL');
  expect(text).toContain('properties.environment.0');
  const nul = StagingRequest.safeParse({ app_id: 'a', download_uri: 's3://b/k', properties: { environment: ['BAD=a\0b'] } });
  expect(describeSchemaError(nul.error!)).toBe('properties.environment.0: environment entries cannot contain a NUL character (\\0)');
});

describe('app_id (contracts/common.ts, shared with StartRequest and StopRequest)', () => {
  const hostile = [
    '../../../../../../../tmp/x', // wrote outside the emulator's data dir
    '../../etc', // made a pseudo-bucket
    'a/b//c/',
    'probe/..', // normalised into colliding keys
    'x\ud800y', // a lone surrogate: "URI malformed" deep in the SDK
    'a'.repeat(251),
    'b'.repeat(256),
    'c'.repeat(64), // over-long: the emulator's PUT failed, retried toward the DLQ
    'Upper',
    'under_score',
    'dot.ted',
    '-lead',
    'trail-',
    '',
    ' ',
    'a b',
    'a%2f',
    -1,
    1.5,
    1e300,
  ];
  it.each(hostile.map((v) => [v]))('refuses %j in both staging and start requests, naming the rule', (appId) => {
    const staging = StagingRequest.safeParse({ app_id: appId, download_uri: 's3://apps/a.zip' });
    expect(staging.success).toBe(false);
    expect(describeSchemaError(staging.error!)).toBe(`app_id: ${APP_ID_RULE}`);
    expect(StartRequest.safeParse({ kind: 'start', app_id: appId, droplet_uri: 's3://d/k.tgz' }).success).toBe(false);
    expect(StopRequest.safeParse({ kind: 'stop', app_id: appId }).success).toBe(false);
  });

  it.each([['node-hello'], ['hello-python'], ['a'], ['7'], ['x'.repeat(63)], [42], [0]])('accepts %j', (appId) => {
    expect(StagingRequest.parse({ app_id: appId, download_uri: 's3://apps/a.zip' }).app_id).toBe(appId);
    expect(StartRequest.parse({ kind: 'start', app_id: appId, droplet_uri: 's3://d/k.tgz' }).app_id).toBe(String(appId));
  });
});

it('bounds resources.memory and disk as the agent bounds an instance (16 MB – 1 TiB)', () => {
  const at = (resources: Record<string, number>) => StagingRequest.safeParse({ app_id: 'a', download_uri: 's3://apps/a.zip', properties: { resources } });
  expect(at({ memory: 1e12 }).success).toBe(false); // wrote -Xmx750000000000m
  expect(describeSchemaError(at({ memory: 1e12 }).error!)).toMatch(/^properties\.resources\.memory: Too big/);
  expect(at({ memory: 8 }).success).toBe(false);
  expect(at({ disk: 2 ** 21 }).success).toBe(false);
  expect(at({ memory: 16, disk: 1024 * 1024 }).success).toBe(true);
  for (const memory of [8, 1e12]) expect(StartRequest.safeParse({ kind: 'start', app_id: 'a', droplet_uri: 's3://d/k.tgz', memory }).success).toBe(false);
});
