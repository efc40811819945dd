/**
 * Every plugin's fixture app, auto-detected (or as the request names it), staged through the
 * real stage phase, started with ./startup -p PORT on this host, answered over HTTP, and
 * stopped by ./stop with no process left behind.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bundledNpmCli } from '../../plugins/node/index.ts';
import { cleanup, stageApp, startDroplet, stopDroplet } from './helpers.ts';

afterEach(cleanup);

const cases: Array<{ fixture: string; framework: string; body: RegExp; app_root?: string }> = [
  { fixture: 'node-hello', framework: 'node', body: /^Hello from node \(production\)\n$/ },
  { fixture: 'python-wsgi', framework: 'wsgi', body: /^Hello from wsgi\n$/ },
  { fixture: 'python-procfile', framework: 'wsgi', body: /^Hello from a plain Python script\n$/ },
  { fixture: 'ruby-rack', framework: 'rack', body: /^Hello from rack \(production\)\n$/ },
  { fixture: 'ruby-sinatra', framework: 'rack', body: /^Hello from sinatra\n$/ },
  { fixture: 'ruby-vendored', framework: 'rack', body: /^Hello from a vendored gem\n$/ },
  { fixture: 'php-hello', framework: 'php', body: /^Hello from php 8\n$/ },
  { fixture: 'static-site', framework: 'static', body: /Hello from a static site/ },
  { fixture: 'monorepo', framework: 'node', body: /^Hello from services\/api\n$/, app_root: 'services/api' },
];

describe.each(cases)('$fixture', ({ fixture, framework, body, app_root }) => {
  it(`is detected as ${framework}, serves, and stops cleanly`, async () => {
    const { dir, info, log } = await stageApp(fixture, app_root ? { app_root } : {});
    expect(info).toMatchObject({ framework, detected: true });
    expect(log).toContain(`Using ${framework}: ${(info.detection as { why: string }).why}`);
    const running = await startDroplet(dir);
    const res = await running.get();
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(body);
    await stopDroplet(dir, running);
  });
});

it('static and php sites keep dotfiles private', async () => {
  for (const fixture of ['static-site', 'php-hello']) {
    const { dir } = await stageApp(fixture);
    expect(existsSync(join(dir, 'app', '.env'))).toBe(true); // kept in the droplet…
    const running = await startDroplet(dir);
    expect((await running.get('/.env')).status).toBe(404); // …but never served
    await stopDroplet(dir, running);
  }
});

it('a node app that brings node_modules keeps them and gets .bin on PATH', async () => {
  const { dir, log } = await stageApp('node-hello', {}, (app) => {
    mkdirSync(join(app, 'node_modules', '.bin'), { recursive: true });
    mkdirSync(join(app, 'node_modules', 'shout'));
    writeFileSync(join(app, 'node_modules', 'shout', 'index.js'), 'module.exports = (s) => s.toUpperCase();\n');
    writeFileSync(
      join(app, 'server.js'),
      [
        "const shout = require('shout');",
        "require('node:http').createServer((q, r) => r.end(shout('kept\\n') + process.env.PATH.split(':')[0] + '\\n')).listen(Number(process.env.PORT));",
      ].join('\n'),
    );
  });
  expect(log).toContain('The app brings node_modules: kept as they are');
  const running = await startDroplet(dir);
  expect(await (await running.get()).text()).toBe(`KEPT\n${dir}/app/node_modules/.bin\n`);
  await stopDroplet(dir, running);
});

it('node-lockfile: npm ci --omit=dev installs the locked dependency, with the npm that ships with the stager', async () => {
  expect(bundledNpmCli(process.env), "the npm package is missing from the stager's dependencies").toBeDefined();
  const { dir, log } = await stageApp('node-lockfile');
  expect(log).toContain('Installing dependencies from package-lock.json (npm ci --omit=dev)');
  expect(readFileSync(join(dir, 'app', 'node_modules', 'greet', 'package.json'), 'utf8')).toContain('"greet"');
  const running = await startDroplet(dir);
  expect(await (await running.get()).text()).toBe('Hello, node, from a locked dependency\n');
  await stopDroplet(dir, running);
});
