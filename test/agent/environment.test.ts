/** The run contract's environment (DESIGN §4) and how it reaches the spawned script. */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { StartRequest } from '../../contracts/instances.ts';
import { exportLines, runEnvironment, vcapServices } from '../../container-host/agent/run-environment.ts';

const request = StartRequest.parse({
  kind: 'start',
  app_id: 'shop',
  name: 'Shop',
  droplet_uri: 's3://droplets/shop/1.tgz',
  memory: 128,
  disk: 512,
  environment: ['RACK_ENV=production', 'PORT=1', 'QUOTE=it\'s "fine" $HOME `x`', 'RACK_ENV=staging'],
  services: [{ label: 'mysql-5.1', name: 'db', credentials: { user: 'u' } }, { vendor: 'redis', version: '2.6', name: 'cache' }, { name: 'mine' }],
});
const placement = { instanceId: 'abc', index: 2, home: '/home/vcap', port: 61005, uri: '10.0.0.5:61005', startedAt: new Date('2026-01-02T03:04:05Z') };

describe('the run environment', () => {
  it("provides the contract names, the user's own after them, the contract winning", () => {
    const env = runEnvironment(request, placement);
    expect(env).toMatchObject({
      HOME: '/home/vcap',
      PORT: '61005',
      VCAP_APP_PORT: '61005',
      VCAP_APP_HOST: '0.0.0.0',
      MEMORY_LIMIT: '128m',
      RACK_ENV: 'staging',
      QUOTE: 'it\'s "fine" $HOME `x`',
    });
    expect(JSON.parse(env.VCAP_APPLICATION)).toMatchObject({
      instance_id: 'abc',
      instance_index: 2,
      name: 'Shop',
      uris: ['10.0.0.5:61005'],
      port: 61005,
      start: '2026-01-02T03:04:05.000Z',
      started_at_timestamp: 1767323045,
      limits: { mem: 128 * 1024 * 1024, disk: 512 * 1024 * 1024, fds: 1024 },
    });
    expect(JSON.parse(env.VCAP_APPLICATION).version).toMatch(/^[0-9a-f]{40}$/);
  });

  it('keys VCAP_SERVICES by label (vendor-version for v1 bindings without one)', () => {
    expect(Object.keys(vcapServices(request.services))).toEqual(['mysql-5.1', 'redis-2.6', 'user-provided']);
    expect(JSON.parse(runEnvironment(request, placement).VCAP_SERVICES)['mysql-5.1'][0].credentials).toEqual({ user: 'u' });
  });

  it('exports every value to bash exactly, whatever it holds', () => {
    const env = runEnvironment(request, placement);
    const script = `${exportLines(env)}\nfor n in ${Object.keys(env).join(' ')}; do printf '%s\\0' "\${!n}"; done`;
    const values = execFileSync('bash', ['-c', script], { encoding: 'utf8', env: {} }).split('\0').slice(0, -1);
    expect(values).toEqual(Object.values(env));
  });

  it('refuses a name that would run as shell', () => {
    expect(() => exportLines({ 'A;rm -rf /': 'x' })).toThrow('"A;rm -rf /" is not a valid environment variable name');
  });
});
