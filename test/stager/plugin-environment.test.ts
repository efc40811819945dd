import { expect, it } from 'vitest';
import { pluginEnvironmentFromEnv } from '../../functions/stager/config.ts';
import { execInGroup } from '../../functions/stager/exec.ts';

const env = {
  PATH: '/usr/bin:/bin',
  HOME: '/root',
  AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'secret',
  AWS_SESSION_TOKEN: 'token',
  AWS_SECURITY_TOKEN: 'token',
  AWS_REGION: 'eu-west-1',
  DROPWARDEN_DETECT_ORDER: 'node,static',
  DROPWARDEN_UNPACK_MAX_ENTRIES: '7',
};

it('gives plugins the DROPWARDEN_* settings, the task limits, and a program environment without AWS credentials', () => {
  const plugins = pluginEnvironmentFromEnv(env);
  expect(plugins.settings).toEqual({ DROPWARDEN_DETECT_ORDER: 'node,static', DROPWARDEN_UNPACK_MAX_ENTRIES: '7' });
  expect(plugins.unpackLimits.maxEntries).toBe(7);
  expect(Object.keys(plugins.programEnv).filter((k) => k.startsWith('AWS_'))).toEqual(['AWS_REGION']);
  expect(plugins.programEnv).toMatchObject({ PATH: '/usr/bin:/bin', HOME: '/root' });
});

it('a program run by exec sees no credentials, whatever the stager holds', async () => {
  const lines: string[] = [];
  const { programEnv } = pluginEnvironmentFromEnv(env);
  await execInGroup('bash', ['-c', 'env | grep -c "^AWS_\\(ACCESS\\|SECRET\\|SESSION\\|SECURITY\\)" || true; echo "$EXTRA:$PATH"'], {
    baseEnv: programEnv,
    env: { EXTRA: 'x' },
    pathPrefix: ['/opt/first'],
    log: (line) => lines.push(line),
    signal: new AbortController().signal,
  });
  expect(lines).toEqual(['0', 'x:/opt/first:/usr/bin:/bin']);
});

it('gives programs a PATH even when the stager has none', () => {
  expect(pluginEnvironmentFromEnv({}).programEnv.PATH).toBe('/usr/local/bin:/usr/bin:/bin');
});
