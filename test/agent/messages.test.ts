/** What the agent says about start-queue messages it cannot use. */
import { describe, expect, it } from 'vitest';
import { explainMalformed } from '../../container-host/agent/poller.ts';
import { APP_ID_RULE } from '../../contracts/common.ts';

const error = (body: string) => {
  const r = explainMalformed(body);
  return 'error' in r ? r.error : undefined;
};

describe('start queue messages', () => {
  it('parses start and stop requests with their defaults', () => {
    expect(explainMalformed(JSON.stringify({ kind: 'start', app_id: 7, droplet_uri: 's3://d/k.tgz', extra: true }))).toEqual({
      message: {
        kind: 'start',
        app_id: '7',
        droplet_uri: 's3://d/k.tgz',
        instances: 1,
        memory: 256,
        disk: 1024,
        environment: [],
        services: [],
        health_check: { type: 'port' },
        extra: true,
      },
    });
    expect(explainMalformed('{"kind":"stop","app_id":"a"}')).toEqual({ message: { kind: 'stop', app_id: 'a' } });
  });

  it('says precisely what is wrong', () => {
    expect(error('')).toMatch(/^the body is not JSON: /);
    expect(error('[1]')).toBe('the body is not a JSON object');
    expect(error('{"app_id":"a"}')).toBe('"kind" must be "start" or "stop", not absent');
    expect(error('{"kind":"restart","app_id":"a"}')).toBe('"kind" must be "start" or "stop", not "restart"');
    expect(error('{"kind":"start","app_id":"a","droplet_uri":"ftp://x"}')).toBe('droplet_uri: droplet_uri must be an s3://bucket/key or an https:// URL');
    expect(error('{"kind":"start","droplet_uri":"s3://d/k","memory":8,"environment":["1=2"]}')).toBe(
      `app_id: ${APP_ID_RULE}; memory: Too small: expected number to be >=16; environment.0: environment entries must be "NAME=value"`,
    );
    // A start request with a usable reply_to says where to answer; one without does not.
    const reply = 'http://127.0.0.1:4566/000000000000/replies';
    expect(explainMalformed(JSON.stringify({ kind: 'start', app_id: 'web', droplet_uri: 'ftp://x', reply_to: reply }))).toEqual({
      error: 'droplet_uri: droplet_uri must be an s3://bucket/key or an https:// URL',
      replyTo: reply,
      appId: 'web',
    });
    expect(explainMalformed(JSON.stringify({ kind: 'start', app_id: ['x'], instances: 0, droplet_uri: 's3://d/k', reply_to: reply }))).toMatchObject({
      replyTo: reply,
      appId: '',
    });
    expect(explainMalformed(JSON.stringify({ kind: 'start', app_id: 'web', reply_to: 'not a url' }))).not.toHaveProperty('replyTo');
    expect(explainMalformed(JSON.stringify({ kind: 'stop', app_id: 'A', reply_to: reply }))).not.toHaveProperty('replyTo');
    // A NUL cannot cross exec: refused at the boundary, not found later as a crash loop.
    expect(error(JSON.stringify({ kind: 'start', app_id: 'a', droplet_uri: 's3://d/k', environment: ['OK=1', 'BAD=a\u0000b'] }))).toBe(
      'environment.1: environment entries cannot contain a NUL character (\\0)',
    );
  });
});
