import { expect, it } from 'vitest';
import { pluginEnvironmentFromEnv } from '../../functions/stager/config.ts';
import { execInGroup } from '../../functions/stager/exec.ts';
import { SANDBOX_BASE_ENV } from '../../functions/stager/sandbox.ts';

const env = {
  PATH: '/opt/stager/bin:/usr/bin:/bin',
  HOME: '/root',
  AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'secret',
  AWS_SESSION_TOKEN: 'token',
  AWS_REGION: 'eu-west-1',
  DROPWARDEN_DETECT_ORDER: 'node,static',
  DROPWARDEN_UNPACK_MAX_ENTRIES: '7',
  DROPWARDEN_SANDBOX: 'env-only',
};

it('gives plugins the DROPWARDEN_* settings, the sandbox mode and the task limits; programs start from PATH and LANG only', () => {
  const plugins = pluginEnvironmentFromEnv(env);
  expect(plugins.settings).toEqual({ DROPWARDEN_DETECT_ORDER: 'node,static', DROPWARDEN_UNPACK_MAX_ENTRIES: '7', DROPWARDEN_SANDBOX: 'env-only' });
  expect(plugins.sandbox).toBe('env-only');
  expect(plugins.unpackLimits.maxEntries).toBe(7);
  expect(Object.keys(SANDBOX_BASE_ENV).sort()).toEqual(['LANG', 'PATH']);
  expect(pluginEnvironmentFromEnv({}).sandbox).toBe('namespaces');
});

it('refuses an unknown sandbox mode, naming the setting', () => {
  expect(() => pluginEnvironmentFromEnv({ DROPWARDEN_SANDBOX: 'none' })).toThrow(/^DROPWARDEN_SANDBOX must be "namespaces" or "env-only"/);
});

it('a program run by exec sees the program environment, what the plugin names, and its PATH prefix: no credentials', async () => {
  const lines: string[] = [];
  const programEnv = SANDBOX_BASE_ENV;
  await execInGroup('bash', ['-c', 'env | grep -c "^AWS_" || true; echo "$EXTRA:$PATH"'], {
    baseEnv: programEnv,
    env: { EXTRA: 'x' },
    pathPrefix: ['/opt/first'],
    log: (line) => lines.push(line),
    signal: new AbortController().signal,
  });
  expect(lines).toEqual(['0', `x:/opt/first:${programEnv.PATH}`]);
});
