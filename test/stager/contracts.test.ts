import { expect, it } from 'vitest';
import { StagingRequest, describeSchemaError } from '../../contracts/staging.ts';

it('accepts a Cloud Foundry v1-shaped request and keeps unknown fields', () => {
  const v1 = {
    app_id: 42,
    download_uri: 'https://cc.example.com/staging/apps/42?sig=abc',
    upload_uri: 'https://cc.example.com/staging/droplets/42',
    properties: {
      framework: 'sinatra', runtime: 'ruby19', services: [{ label: 'mysql-5.1' }],
      resources: { memory: 128, disk: 2048, fds: 256 }, environment: ['RACK_ENV=production'], meta: {},
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
});
