/** Detection order and its record, Procfile precedence, app_root, and the standalone runtimes. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { jvmMemory } from '../../plugins/api/jvm.ts';
import { detectOrder } from '../../plugins/registry.ts';
import { stagerConfigFromEnv } from '../../functions/stager/config.ts';
import { createHandler, depsFromConfig } from '../../functions/stager/handler.ts';
import { standaloneRuntime } from '../../plugins/standalone/index.ts';
import { cleanup, stageApp, startDroplet, stopDroplet } from './helpers.ts';

afterEach(() => {
  cleanup();
  vi.unstubAllEnvs();
});

const both = (app: string) => writeFileSync(join(app, 'index.html'), '<p>also a static site</p>\n');

it('logs every candidate, and why the winner won; staging_info.json records it', async () => {
  const { dir, info, log } = await stageApp('php-hello', {}, both);
  expect(log).toEqual(
    expect.arrayContaining([
      'Detecting the framework, in the order standalone, java_web, node, rack, wsgi, php, static, buildpack',
      'Detect standalone: no match (the request gives no start command (properties.meta.command))',
      'Detect node: no match (no package.json, server.js, app.js, index.js, main.js)',
      'Detect php: matched (index.php found)',
      'Detect static: matched (index.html found)',
      'Using php: the first of 2 matches (php, static) in the detection order (index.php found)',
    ]),
  );
  const recorded = JSON.parse(readFileSync(join(dir, 'staging_info.json'), 'utf8'));
  expect(recorded).toEqual(info);
  expect(recorded).toMatchObject({
    framework: 'php',
    detected: true,
    start_command_source: 'php',
    detection: { order: ['standalone', 'java_web', 'node', 'rack', 'wsgi', 'php', 'static', 'buildpack'], chosen: 'php' },
  });
  expect(recorded.detection.candidates).toHaveLength(8);
  expect(recorded.detection.candidates[6]).toEqual({ name: 'static', matched: true, reason: 'index.html found' });
  // Buildpacks run programs to detect: once a plugin matched they are not asked.
  expect(recorded.detection.candidates[7]).toEqual({ name: 'buildpack', matched: false, reason: 'not asked: php matched first' });
});

it('DROPWARDEN_DETECT_ORDER changes the order', async () => {
  vi.stubEnv('DROPWARDEN_DETECT_ORDER', 'static, php');
  const { info, log } = await stageApp('php-hello', {}, both);
  expect(info).toMatchObject({ framework: 'static', detection: { order: ['static', 'php'] } });
  expect(log).toContain('Using static: the first of 2 matches (static, php) in the detection order (index.html found)');
});

it('an unknown name in DROPWARDEN_DETECT_ORDER is blamed on the setting', () => {
  vi.stubEnv('DROPWARDEN_DETECT_ORDER', 'node,pyhton');
  expect(() => detectOrder(process.env)).toThrow(/^DROPWARDEN_DETECT_ORDER: unknown framework "pyhton"/);
});

it('the stager fails its set-up on an unknown name in DROPWARDEN_DETECT_ORDER, before any request is answered', async () => {
  // The settings as the handler's composition root reads them; nothing of the stack is reached.
  const config = stagerConfigFromEnv({
    DROPWARDEN_RESULTS_QUEUE_URL: 'http://127.0.0.1:9/000000000000/results',
    DROPWARDEN_DROPLETS_BUCKET: 'droplets',
    DROPWARDEN_WORK_DIR: '/nonexistent/dropwarden-work',
    DROPWARDEN_DETECT_ORDER: 'node,pyhton',
  });
  const handler = createHandler(() => depsFromConfig(config));
  await expect(handler({ Records: [] })).rejects.toThrow(/^DROPWARDEN_DETECT_ORDER: unknown framework "pyhton"/);
});

it('a named framework skips detection and says so', async () => {
  const { info, log } = await stageApp('php-hello', { framework_info: { name: 'staticfile' } }, both);
  expect(info).toMatchObject({ framework: 'static', detected: false, detection: { requested: 'staticfile' } });
  expect(log).toContain('Using static: the request names framework "staticfile"');
});

it("a Procfile web: line wins over the plugin's start command; meta.command wins over both", async () => {
  const procfile = (app: string) => writeFileSync(join(app, 'Procfile'), 'worker: node work.js\nweb: node server.js --from-procfile\n');
  const { dir, info, log } = await stageApp('node-hello', {}, procfile);
  expect(info).toMatchObject({ framework: 'node', start_command: 'node server.js --from-procfile', start_command_source: 'Procfile' });
  expect(log).toContain('Procfile overrides the node start command (node server.js)');
  expect(readFileSync(join(dir, 'startup'), 'utf8')).toContain(`START_COMMAND='node server.js --from-procfile'`);

  const given = await stageApp('node-hello', { framework: 'node', meta: { command: 'node server.js --given' } }, procfile);
  expect(given.info).toMatchObject({ framework: 'node', start_command: 'node server.js --given', start_command_source: 'meta.command' });
});

it('a Procfile without web: leaves the start command alone', async () => {
  const { info, log } = await stageApp('node-hello', {}, (app) => writeFileSync(join(app, 'Procfile'), 'worker: node work.js\n'));
  expect(info).toMatchObject({ start_command: 'node server.js', start_command_source: 'node' });
  expect(log).toContain('Procfile has no web: line; it does not change the start command');
});

it('app_root: only the subdirectory is in the droplet; the zip root is gone afterwards', async () => {
  const { dir, info } = await stageApp('monorepo', { app_root: 'services/api/' });
  expect(info).toMatchObject({ app_root: 'services/api', framework: 'node', start_command: 'node server.js' });
  expect(readFileSync(join(dir, 'app', 'server.js'), 'utf8')).toContain('services/api');
  const { existsSync } = await import('node:fs');
  expect(existsSync(join(dir, 'app', 'services'))).toBe(false);
  expect(existsSync(`${dir}.zip-root`)).toBe(false);
});

it('standalone: java gets JAVA_OPTS sized under the quota, python PYTHONUNBUFFERED, all of app/ executable', async () => {
  const java = await stageApp('python-no-app', { meta: { command: 'java -jar app.jar' }, resources: { memory: 512 } });
  const startup = readFileSync(join(java.dir, 'startup'), 'utf8');
  expect(startup).toContain(`export JAVA_OPTS='-Xmx384m -XX:MaxMetaspaceSize=64m -Xss512k -Djava.io.tmpdir=../tmp'`);
  expect(startup).toContain(`export JAVA_TOOL_OPTIONS='-Xmx384m`);
  const opts = await stageApp('python-no-app', { meta: { command: 'java $JAVA_OPTS -jar app.jar' } });
  expect(readFileSync(join(opts.dir, 'startup'), 'utf8')).not.toContain('JAVA_TOOL_OPTIONS');

  const py = await stageApp('python-no-app', { meta: { command: 'python3 app.py' } });
  expect(py.info).toMatchObject({ framework: 'standalone', runtime: 'python' });
  expect(readFileSync(join(py.dir, 'startup'), 'utf8')).toContain(`export PYTHONUNBUFFERED='1'`);
  const { statSync } = await import('node:fs');
  expect(statSync(join(py.dir, 'app', 'app.py')).mode & 0o111).toBe(0o111);

  expect(standaloneRuntime('node20', 'x')).toBe('node');
  expect(standaloneRuntime(undefined, 'PORT=1 exec ruby app.rb')).toBe('ruby');
  expect(standaloneRuntime(undefined, '/usr/bin/php -S 0.0.0.0:1')).toBe('php');
  expect(standaloneRuntime(undefined, './server')).toBeUndefined();
});

it('heap sizing leaves room for non-heap memory', () => {
  for (const mb of [128, 256, 512, 1024, 4096]) {
    const m = jvmMemory(mb);
    expect(m.heapMb + m.metaspaceMb).toBeLessThan(mb);
    expect(mb - m.heapMb).toBeGreaterThanOrEqual(96);
  }
  expect(jvmMemory(1024).heapMb).toBe(768);
});

it('a plain Python script runs from its Procfile with PYTHONUNBUFFERED', async () => {
  const { dir, info } = await stageApp('python-procfile');
  expect(info).toMatchObject({ framework: 'wsgi', start_command: 'python3 worker.py', start_command_source: 'Procfile' });
  const running = await startDroplet(dir);
  expect((await running.get()).status).toBe(200);
  await stopDroplet(dir, running);
});
