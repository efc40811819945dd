/**
 * buildpack: the classic bin/detect, bin/compile, bin/release over DROPWARDEN_BUILDPACKS, with
 * fixture buildpacks under test/apps/buildpacks/; staged through the real stage phase, run on
 * this host with ./startup -p PORT (.profile.d sourced, config_vars exported), stopped cleanly.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseRelease } from '../../plugins/buildpack/release.ts';
import { appPath, cleanup, stageApp, stagingError, startDroplet, stopDroplet } from './helpers.ts';

const bp = (name: string) => appPath(`buildpacks/${name}`);

beforeEach(() => vi.stubEnv('DROPWARDEN_BUILDPACKS', [bp('never'), bp('broken'), bp('greeting')].join(':')));
afterEach(() => {
  vi.unstubAllEnvs();
  cleanup();
});

it('detects the app with the first buildpack that claims it, compiles, and runs its web process', async () => {
  const { dir, info, log } = await stageApp('buildpack-greeting', { environment: ['GREETING_SUFFIX=, world'] });
  expect(info).toMatchObject({ framework: 'buildpack', runtime: 'Greeting', start_command: 'exec python3 bin/server.py', detected: true });
  expect(log).toContain('Detect buildpack: matched (buildpack greeting detected "Greeting")');
  expect(log).toEqual(
    expect.arrayContaining([
      'Buildpack never: no match',
      'never: not for me', // detect's stderr, in the task log
      'Buildpack broken: no match',
      'Buildpack greeting: detected "Greeting"',
      '-----> Greeting buildpack: compiling', // compile's output, in the task log
      'Start command from buildpack greeting: exec python3 bin/server.py',
    ]),
  );
  expect(existsSync(join(dir, 'app', '.profile.d', 'greeting.sh'))).toBe(true);
  expect(readFileSync(join(dir, 'startup'), 'utf8')).toContain("export GREETING_FROM='the greeting buildpack'");
  const running = await startDroplet(dir);
  expect(await (await running.get()).text()).toBe('Hello from a buildpack, world\nprofile.d: sourced at start\nconfig var: the greeting buildpack\n');
  await stopDroplet(dir, running);
});

describe('errors', () => {
  it('no buildpack detects the app: the message lists the buildpacks tried', async () => {
    expect(await stagingError('static-site', { framework: 'buildpack' })).toBe(
      'Staging plugin failed: Buildpack staging failed: no buildpack detected this app (tried never, broken, greeting)',
    );
  });

  it('an app that neither a plugin nor a buildpack detects fails detection', async () => {
    vi.stubEnv('DROPWARDEN_DETECT_ORDER', 'node,buildpack');
    const message = await stagingError('static-site');
    expect(message).toMatch(/^Staging plugin failed: no framework detected for this app/);
  });

  it("a failing bin/compile is named, without the stager's paths", async () => {
    expect(await stagingError('buildpack-broken')).toBe("Staging plugin failed: Buildpack staging failed: buildpack broken's bin/compile exited with status 3");
  });

  it('no buildpacks configured', async () => {
    vi.stubEnv('DROPWARDEN_BUILDPACKS', '');
    expect(await stagingError('buildpack-greeting', { framework: 'buildpack' })).toBe(
      'Staging plugin failed: Buildpack staging failed: this stager has no buildpacks configured (DROPWARDEN_BUILDPACKS)',
    );
  });

  it('a configured buildpack without its scripts', async () => {
    vi.stubEnv('DROPWARDEN_BUILDPACKS', appPath('static-site'));
    expect(await stagingError('buildpack-greeting', { framework: 'buildpack' })).toMatch(/buildpack static-site has no executable bin\/detect/);
  });
});

describe('bin/release YAML', () => {
  it('reads web and config_vars in their usual shapes', () => {
    const text = [
      '---',
      '# comment',
      'addons:',
      '  - heroku-postgresql:hobby-dev',
      'config_vars:',
      "  SINGLE: 'it''s'",
      '  DOUBLE: "a \\"b\\"\\tc"',
      '  PLAIN: /app/bin:/usr/bin # trailing comment',
      '  "QUOTED_KEY": x',
      'default_process_types:',
      '  web: bundle exec rackup -p $PORT',
      '  worker: rake jobs:work',
      '',
    ].join('\n');
    expect(parseRelease(text)).toEqual({
      default_process_types: { web: 'bundle exec rackup -p $PORT', worker: 'rake jobs:work' },
      config_vars: { SINGLE: "it's", DOUBLE: 'a "b"\tc', PLAIN: '/app/bin:/usr/bin', QUOTED_KEY: 'x' },
    });
    expect(parseRelease('---\nconfig_vars: {}\n')).toEqual({ default_process_types: {}, config_vars: {} });
  });

  it('reads any YAML a buildpack prints, block scalars included', () => {
    expect(parseRelease('default_process_types:\n  web: |\n    ./bin/server\n').default_process_types.web).toBe('./bin/server\n');
  });

  it('refuses what does not fit the release format, saying what and where', () => {
    expect(() => parseRelease('config_vars:\n  A:\n    B: c\n')).toThrow(/config_vars\.A must be a string, not a nested value/);
    expect(() => parseRelease('default_process_types: web\n')).toThrow(/default_process_types must be a map/);
    expect(() => parseRelease('web: [unclosed\n')).toThrow(/printed invalid YAML \(line \d+\)/);
    expect(() => parseRelease('- a\n- b\n')).toThrow(/must print a YAML map/);
  });
});
