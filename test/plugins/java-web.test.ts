/**
 * java_web: an exploded jakarta WAR and a javax app shipped as a single .war, staged through
 * the real stage phase, started on this host with ./startup -p PORT (Tomcat 10.1 and Tomcat 9
 * from the bundles resources/tomcat/build-bundle.sh builds), answered, and stopped with nothing
 * left; every documented error; the same droplet bytes twice. Two Tomcat starts in all: this
 * box is small.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pack } from '../../functions/stager/phases/pack.ts';
import { DEFAULT_RUNTIMES_DIR, runtimesDir } from '../../plugins/java_web/bundle.ts';
import { NO_WEB_XML } from '../../plugins/java_web/index.ts';
import { MIN_QUOTA_MB, tomcatMemory } from '../../plugins/java_web/memory.ts';
import { apiFromWebXml } from '../../plugins/java_web/servlet-api.ts';
import { buildZip } from '../support/zip-builder.ts';
import { appPath, cleanup, stageApp, stagingError, startDroplet, stopDroplet } from './helpers.ts';

afterEach(cleanup);

const BUILD_SCRIPT = new URL('../../resources/tomcat/build-bundle.sh', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'dw-java-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The servlet compiled for one API: its WEB-INF/classes. */
const classes: Record<'jakarta' | 'javax', string> = { jakarta: join(work, 'jakarta'), javax: join(work, 'javax') };

beforeAll(() => {
  // npm test's set-up builds the bundles; a run of this file alone gets them here (once, quickly).
  const runtimes = runtimesDir(process.env);
  if (!['tomcat10', 'tomcat9'].every((b) => existsSync(join(runtimes, b, 'bin', 'bootstrap.jar')))) {
    execFileSync(BUILD_SCRIPT, runtimes === DEFAULT_RUNTIMES_DIR ? [] : [runtimes], { stdio: 'pipe' });
  }
  const source = readFileSync(join(appPath('java-servlet'), 'HelloServlet.java'), 'utf8');
  for (const [api, bundle] of [
    ['jakarta', 'tomcat10'],
    ['javax', 'tomcat9'],
  ] as const) {
    const src = join(work, `${api}-src`, 'HelloServlet.java');
    mkdirSync(join(work, `${api}-src`));
    writeFileSync(src, api === 'javax' ? source.replaceAll('jakarta.servlet', 'javax.servlet') : source);
    execFileSync('javac', ['-cp', join(runtimes, bundle, 'lib', 'servlet-api.jar'), '-d', classes[api], src], { stdio: 'pipe' });
  }
}, 120_000);

const withClasses = (api: 'jakarta' | 'javax') => (app: string) => cpSync(classes[api], join(app, 'WEB-INF', 'classes'), { recursive: true });

describe('an exploded jakarta.servlet WAR', () => {
  it('is detected, runs on Tomcat 10.1 as ROOT with its port, heap and tmpdir, and stops cleanly', async () => {
    const { dir, info, log } = await stageApp('java-web', { resources: { memory: 256 } }, withClasses('jakarta'));
    expect(info).toMatchObject({ framework: 'java_web', runtime: 'tomcat10', detected: true });
    expect(log).toContainEqual(
      expect.stringMatching(/^Servlet API: jakarta \(WEB-INF\/classes\/hello\/HelloServlet\.class uses jakarta\.servlet\): Tomcat 10\.1\.\S+ \(tomcat10\)$/),
    );
    expect(existsSync(join(dir, 'tomcat', 'webapps', 'ROOT', 'WEB-INF', 'web.xml'))).toBe(true);
    expect(readdirSync(join(dir, 'app'))).toEqual([]);
    // Self-contained: no symlink back into the stager's machine, no server.xml until startup writes one.
    expect(existsSync(join(dir, 'tomcat', 'conf', 'server.xml'))).toBe(false);
    const startup = readFileSync(join(dir, 'startup'), 'utf8');
    expect(startup).toContain('> tomcat/conf/server.xml');
    expect(startup).toContain('-Xmx128m');
    expect(startup).not.toMatch(/ruby|python|perl|sed /);

    const running = await startDroplet(dir);
    expect(readFileSync(join(dir, 'tomcat', 'conf', 'server.xml'), 'utf8')).toContain(`<Connector port="${running.port}"`);
    const text = await (await running.get()).text();
    expect(text).toMatch(/^Hello from java_web on Apache Tomcat\/10\.1\./);
    expect(text).toContain('servlet API jakarta.servlet.http\n');
    expect(text).toContain(`tmpdir ${dir}/tmp\n`);
    const heap = Number(/max heap MB (\d+)/.exec(text)![1]);
    expect(heap).toBeGreaterThan(100);
    expect(heap).toBeLessThanOrEqual(128);
    expect(await (await running.get('/hello.jsp')).text()).toContain('JSP says 42');
    await stopDroplet(dir, running);
  });

  it('stages to the same droplet bytes twice', async () => {
    const sums: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { dir } = await stageApp('java-web', {}, withClasses('jakarta'));
      const packed = await pack({ dropletDir: dir, dest: join(work, `twice-${i}.tgz`), gzipLevel: 1, signal: new AbortController().signal });
      sums.push(packed.sha256);
    }
    expect(sums[1]).toBe(sums[0]);
  });
});

it('a javax.servlet app as the one .war in the zip, named as spring, runs on Tomcat 9', async () => {
  const { dir, info, log } = await stageApp('java-web-javax', { framework: 'spring' }, (app) => {
    withClasses('javax')(app);
    execFileSync('zip', ['-qr', 'hello.war', 'WEB-INF'], { cwd: app });
    rmSync(join(app, 'WEB-INF'), { recursive: true });
    writeFileSync(join(app, 'README'), 'deploy notes\n');
  });
  expect(info).toMatchObject({ framework: 'java_web', runtime: 'tomcat9', detected: false });
  expect(log).toContain('Unpacking hello.war');
  expect(readdirSync(join(dir, 'app'))).toEqual(['README']); // the .war itself is not kept
  const running = await startDroplet(dir);
  const text = await (await running.get()).text();
  expect(text).toMatch(/^Hello from java_web on Apache Tomcat\/9\.0\./);
  expect(text).toContain('servlet API javax.servlet.http\n');
  await stopDroplet(dir, running);
});

describe('errors', () => {
  it('an app with WEB-INF/ but no web.xml', async () => {
    expect(await stagingError('java-web-no-webxml')).toBe(`Staging plugin failed: ${NO_WEB_XML}`);
  });

  it('a .war without web.xml', async () => {
    const message = await stagingError('java-web-no-webxml', {}, (app) => {
      execFileSync('zip', ['-qr', 'app.war', '.'], { cwd: app });
      rmSync(join(app, 'WEB-INF'), { recursive: true });
      rmSync(join(app, 'index.jsp'));
    });
    expect(message).toBe(`Staging plugin failed: ${NO_WEB_XML}`);
  });

  it('a java_web app with neither WEB-INF/ nor a .war', async () => {
    expect(await stagingError('static-site', { framework: 'java_web' })).toBe(`Staging plugin failed: ${NO_WEB_XML}`);
  });

  it('more than one .war', async () => {
    const message = await stagingError('static-site', {}, (app) => {
      writeFileSync(join(app, 'a.war'), '');
      writeFileSync(join(app, 'b.war'), '');
    });
    expect(message).toBe('Staging plugin failed: Web application staging failed: the app holds 2 .war files (a.war, b.war); upload one');
  });

  it('a .war with an entry that escapes: refused by the unpack rules', async () => {
    const message = await stagingError('static-site', {}, (app) => {
      writeFileSync(
        join(app, 'evil.war'),
        buildZip([
          { name: 'WEB-INF/web.xml', data: '<web-app/>' },
          { name: '../../escaped', data: 'x' },
        ]),
      );
    });
    expect(message).toBe('Staging plugin failed: Web application staging failed: cannot unpack evil.war: entry escapes the app root: ../../escaped');
  });
});

describe('heap sizing', () => {
  it('leaves the non-heap part of the JVM room under the quota', () => {
    expect(tomcatMemory(256)).toMatchObject({ heapMb: 128, metaspaceMb: 64, codeCacheMb: 32 });
    expect(tomcatMemory(1024)).toMatchObject({ heapMb: 704, metaspaceMb: 128, codeCacheMb: 64 });
    for (const quota of [MIN_QUOTA_MB, 256, 384, 512, 768, 1024, 2048, 4096, 8192]) {
      const m = tomcatMemory(quota);
      // Heap and the capped pools together leave room for thread stacks, GC structures and native memory.
      expect(quota - (m.heapMb + m.metaspaceMb + m.codeCacheMb)).toBeGreaterThanOrEqual(quota >= 256 ? 32 : 16);
    }
    expect(tomcatMemory(64).heapMb).toBe(64);
  });

  it('reads the servlet API from web.xml when no class says', () => {
    expect(apiFromWebXml('<web-app xmlns="http://xmlns.jcp.org/xml/ns/javaee" version="4.0">')?.api).toBe('javax');
    expect(apiFromWebXml('<!DOCTYPE web-app PUBLIC "-//Sun Microsystems, Inc.//DTD Web Application 2.3//EN" "http://java.sun.com/dtd/web-app_2_3.dtd">')?.api).toBe(
      'javax',
    );
    expect(apiFromWebXml('<web-app xmlns="https://jakarta.ee/xml/ns/jakartaee" version="6.0">')?.api).toBe('jakarta');
    expect(apiFromWebXml('<web-app>')).toBeUndefined();
  });
});
