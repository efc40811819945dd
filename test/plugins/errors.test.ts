/** Every documented staging error, from a failing fixture, with the message the user sees. */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { cleanup, stagingError } from './helpers.ts';

afterEach(cleanup);
const failed = 'Staging plugin failed: ';

it('node: no start command', async () => {
  expect(await stagingError('node-no-start')).toBe(
    `${failed}Unable to determine Node.js startup command: add scripts.start or main to package.json, a server.js/app.js/index.js/main.js file, or a Procfile with a web: line`,
  );
});

it('node: dependencies without a lockfile', async () => {
  const msg = await stagingError('node-hello', {}, (app) =>
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'x', main: 'server.js', dependencies: { left: '1.0.0' } })),
  );
  expect(msg).toBe(
    `${failed}package.json lists dependencies but there is no package-lock.json (or npm-shrinkwrap.json) to install them from: run npm install and add the lockfile, or bring node_modules`,
  );
});

it('node: a package.json that is not JSON', async () => {
  expect(await stagingError('node-hello', {}, (app) => writeFileSync(join(app, 'package.json'), '{ nope'))).toMatch(
    /^Staging plugin failed: package\.json is not valid JSON: /,
  );
});

it('bad Procfile: the line that is wrong', async () => {
  expect(await stagingError('procfile-bad')).toBe(`${failed}bad Procfile: line 2 is not "type: command": "this line is not a process"`);
  expect(await stagingError('node-hello', {}, (app) => writeFileSync(join(app, 'Procfile'), 'web: a\nweb: b\n'))).toBe(
    `${failed}bad Procfile: line 2: process type "web" is defined twice`,
  );
  expect(await stagingError('node-hello', {}, (app) => writeFileSync(join(app, 'Procfile'), 'web:\n'))).toBe(
    `${failed}bad Procfile: line 1: process type "web" has no command`,
  );
  expect(await stagingError('node-hello', {}, (app) => writeFileSync(join(app, 'Procfile'), '# nothing\n'))).toBe(
    `${failed}bad Procfile: it defines no process type (expected a line like "web: node server.js")`,
  );
});

it('python: no WSGI application and no Procfile', async () => {
  expect(await stagingError('python-no-app', { framework: 'wsgi' })).toBe(
    `${failed}no WSGI application found: define a callable named application in wsgi.py or app.py, or add a Procfile with a web: line for a plain script`,
  );
});

it('nothing detected: says how to name a framework', async () => {
  expect(await stagingError('python-no-app')).toBe(
    `${failed}no framework detected for this app: name one with properties.framework_info.name, or give a start command (properties.meta.command)`,
  );
});

it('rack, php, static and standalone named for an app that is not one', async () => {
  expect(await stagingError('python-no-app', { framework: 'sinatra' })).toBe(
    `${failed}no Rack app found: add a config.ru, a Sinatra main file (an .rb that requires sinatra), or a Procfile with a web: line`,
  );
  expect(await stagingError('python-no-app', { framework: 'php' })).toBe(`${failed}a PHP app needs an index.php at its root`);
  expect(await stagingError('python-no-app', { framework: 'static' })).toBe(`${failed}a static site needs an index.html at its root`);
  expect(await stagingError('python-no-app', { framework: 'standalone' })).toBe(
    `${failed}standalone apps need a start command: set properties.meta.command (e.g. "python3 app.py") or add a Procfile with a web: line`,
  );
});

it('unknown framework lists the known ones', async () => {
  expect(await stagingError('node-hello', { framework: 'cobol' })).toBe(
    `${failed}unknown framework "cobol": this stager supports buildpack, java_web, node, nodejs, php, python, python3, rack, ruby, sinatra, spring, standalone, static, staticfile, wsgi`,
  );
});

it('app_root: missing, escaping, or with a link out of it', async () => {
  expect(await stagingError('monorepo', { app_root: 'services/nope' })).toBe(`${failed}app_root "services/nope" is not a directory in the app`);
  expect(await stagingError('monorepo', { app_root: '../etc' })).toBe(`${failed}app_root "../etc" points outside the app`);
  expect(await stagingError('monorepo', { app_root: '/etc' })).toBe(`${failed}app_root "/etc" must be a relative path inside the app, with "/" separators`);
  expect(await stagingError('monorepo', { app_root: 'services/api' }, (app) => symlinkSync('../other/index.html', join(app, 'services/api/shared.html')))).toBe(
    `${failed}symlink services/api/shared.html points outside app_root "services/api"`,
  );
});

it('app_root: a workspace app with dependencies but the lockfile only at the root', async () => {
  const msg = await stagingError('monorepo', { app_root: 'services/api' }, (app) =>
    writeFileSync(join(app, 'services/api/package.json'), JSON.stringify({ name: 'api', main: 'server.js', dependencies: { greet: '1.0.0' } })),
  );
  expect(msg).toBe(
    `${failed}the lockfile is at the zip's root (package-lock.json), not in app_root services/api: npm workspaces are not staged from a subdirectory yet; stage the whole zip, or add a lockfile to services/api`,
  );
});

it('ruby: a vendored gem with native extensions', async () => {
  const { execFileSync } = await import('node:child_process');
  const msg = await stagingError('ruby-rack', {}, (app) => {
    // A .gem is a tar of metadata.gz and data.tar.gz: build one that declares an extension.
    const work = join(app, '..', 'gem');
    mkdirSync(work);
    writeFileSync(join(work, 'metadata'), '--- !ruby/object:Gem::Specification\nname: fast\nextensions:\n- ext/fast/extconf.rb\nrequire_paths:\n- lib\n');
    execFileSync('gzip', ['-n', 'metadata'], { cwd: work });
    execFileSync('tar', ['czf', 'data.tar.gz', '--files-from', '/dev/null'], { cwd: work });
    mkdirSync(join(app, 'vendor', 'cache'), { recursive: true });
    execFileSync('tar', ['cf', join(app, 'vendor', 'cache', 'fast-1.0.gem'), 'metadata.gz', 'data.tar.gz'], { cwd: work });
  });
  expect(msg).toBe(`${failed}gems with native extensions cannot be staged from vendor/cache: fast-1.0; use the run host's packaged gem (e.g. Debian's ruby-*) instead`);
});

it('node: a failing npm ci names the command, not the stager internals', async () => {
  const { vi } = await import('vitest');
  vi.stubEnv('DROPWARDEN_NPM_CLI', '/nonexistent/npm-cli.js');
  try {
    expect(await stagingError('node-lockfile')).toMatch(/^Staging plugin failed: npm ci --omit=dev exited with status 1: its output is in the staging log above$/);
  } finally {
    vi.unstubAllEnvs();
  }
});
