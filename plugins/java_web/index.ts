/**
 * java_web (alias `spring`): a Java web application — an exploded WAR (`WEB-INF/web.xml` at
 * the app's root) or a single `.war` inside the zip, unpacked with the stager's own safety
 * rules — run by a Tomcat copied into the droplet as `tomcat/`, the app as its ROOT webapp.
 * `javax.servlet` apps get Tomcat 9, `jakarta.servlet` apps Tomcat 10.1 (see servlet-api.ts).
 * The droplet's startup writes server.xml for its port and sizes the heap (memory.ts).
 */
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { exists } from '../api/files.ts';
import { type Plugin, PluginError, type StageContext, ArchiveError } from '../api/types.ts';
import { copyBundle, findBundle } from './bundle.ts';
import { START_COMMAND, prestartLines } from './launch.ts';
import { MIN_QUOTA_MB, tomcatMemory } from './memory.ts';
import { type ServletApiGuess, servletApi } from './servlet-api.ts';

export const NO_WEB_XML = 'Web application staging failed: web.xml not found';

async function warFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir, { withFileTypes: true });
  return names
    .filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.war'))
    .map((e) => e.name)
    .sort();
}

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

/** `runtime: tomcat9` / `tomcat10` in the request picks the Tomcat; anything else is detected. */
function requestedApi(ctx: StageContext): ServletApiGuess | undefined {
  const runtime = (ctx.properties.runtime_info?.name ?? ctx.properties.runtime ?? '').toLowerCase();
  if (runtime === 'tomcat9') return { api: 'javax', reason: 'the request names runtime tomcat9' };
  if (runtime === 'tomcat10') return { api: 'jakarta', reason: 'the request names runtime tomcat10' };
  return undefined;
}

/** Unpacks the one .war into a fresh directory beside the droplet's app/, by the task's rules and limits. */
async function unpackWar(ctx: StageContext, war: string): Promise<string> {
  const dest = await mkdtemp(join(ctx.dropletDir, '.war-'));
  ctx.log(`Unpacking ${war}`);
  try {
    const stats = await ctx.unpackArchive(join(ctx.dir, war), dest);
    ctx.log(`Unpacked ${war}: ${stats.files} files, ${stats.bytes} bytes`);
  } catch (err) {
    await rm(dest, { recursive: true, force: true });
    if (ctx.signal.aborted) throw err;
    const reason = err instanceof ArchiveError ? err.reason : (err as Error).message;
    throw new PluginError(`Web application staging failed: cannot unpack ${war}: ${reason}`);
  }
  await rm(join(ctx.dir, war));
  return dest;
}

export const javaWeb: Plugin = {
  name: 'java_web',
  version: '1.0.0',
  aliases: ['spring'],
  async detect({ dir }) {
    if (await exists(join(dir, 'WEB-INF', 'web.xml'))) return { matched: true, reason: 'WEB-INF/web.xml (an exploded WAR)' };
    if (await isDir(join(dir, 'WEB-INF'))) return { matched: true, reason: 'a WEB-INF directory (an exploded WAR)' };
    const wars = await warFiles(dir);
    if (wars.length === 1) return { matched: true, reason: `${wars[0]} (a web application archive)` };
    if (wars.length > 1) return { matched: true, reason: `${wars.length} .war files` };
    return { matched: false, reason: 'no WEB-INF/ and no .war file' };
  },
  async stage(ctx) {
    let webapp = ctx.dir;
    let exploded = true;
    if (!(await isDir(join(ctx.dir, 'WEB-INF')))) {
      const wars = await warFiles(ctx.dir);
      if (wars.length > 1) {
        throw new PluginError(`Web application staging failed: the app holds ${wars.length} .war files (${wars.join(', ')}); upload one`);
      }
      if (wars.length === 1) {
        webapp = await unpackWar(ctx, wars[0]);
        exploded = false;
      }
    }
    if (!(await exists(join(webapp, 'WEB-INF', 'web.xml')))) {
      ctx.log('A Java web application needs WEB-INF/web.xml: at the root of the app, or inside its one .war file');
      if (!exploded) await rm(webapp, { recursive: true, force: true });
      throw new PluginError(NO_WEB_XML);
    }

    const api = requestedApi(ctx) ?? (await servletApi(webapp));
    const bundle = await findBundle(api.api, ctx.settings);
    ctx.log(`Servlet API: ${api.api} (${api.reason}): Tomcat ${bundle.version} (${bundle.name})`);
    const tomcat = join(ctx.dropletDir, 'tomcat');
    await copyBundle(bundle, tomcat);
    const root = join(tomcat, 'webapps', 'ROOT');
    await rename(webapp, root);
    // DESIGN §4: for java_web, tomcat/webapps/ROOT holds the app; app/ stays (startup runs from it).
    if (exploded) await mkdir(ctx.dir);

    const memory = tomcatMemory(ctx.memoryMb);
    if (ctx.memoryMb < MIN_QUOTA_MB) {
      ctx.log(`Warning: ${ctx.memoryMb} MB is less than a Tomcat needs (${MIN_QUOTA_MB} MB); the app may be killed for memory`);
    }
    ctx.log(`CATALINA_OPTS: ${memory.options.join(' ')} (heap ${memory.heapMb} MB of ${ctx.memoryMb} MB)`);
    return {
      startCommand: START_COMMAND,
      runtime: bundle.name,
      environment: memory.environment,
      prestart: prestartLines(memory),
    };
  },
};
