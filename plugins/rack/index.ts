/**
 * rack (and sinatra): a `config.ru` run by `rackup`, or a Sinatra main file (a root .rb that
 * requires sinatra) run by `ruby FILE -p $PORT`. The run host provides ruby, rack (with its
 * rackup), sinatra and webrick (Debian: ruby, ruby-rack, ruby-sinatra, ruby-webrick).
 *
 * Gems in `vendor/cache` are unpacked here, without ruby (the stager has none): each .gem is a
 * tar holding `data.tar.gz` (the files) and `metadata.gz` (YAML: require_paths, extensions).
 * Their require paths go on RUBYLIB, ahead of the host's gems. Gems with native extensions
 * cannot be built this way and are refused with their names.
 */
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar';
import { exists, readText } from '../api/files.ts';
import { type Plugin, PluginError, type StageContext } from '../api/types.ts';

const REQUIRES_SINATRA = /^\s*require\s*\(?\s*['"]sinatra(?:\/base)?['"]/m;
/** Where vendored gems are unpacked, relative to app/. */
const GEMS_DIR = '.gems';

async function sinatraMain(dir: string): Promise<string | undefined> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.rb')).sort();
  for (const name of names) {
    const text = await readText(join(dir, name));
    if (text && REQUIRES_SINATRA.test(text)) return name;
  }
  return undefined;
}

/** The bits of a gem's metadata.gz (YAML) we need, read without a YAML library. */
export function gemMetadata(yaml: string): { requirePaths: string[]; extensions: string[] } {
  const list = (key: string): string[] => {
    const inline = new RegExp(`^${key}:\\s*\\[(.*)\\]\\s*$`, 'm').exec(yaml);
    if (inline)
      return inline[1]
        .split(',')
        .map((s) => s.trim().replace(/^['"]|['"]$/g, ''))
        .filter(Boolean);
    const block = new RegExp(`^${key}:\\s*\\n((?:- .*\\n?)*)`, 'm').exec(yaml);
    if (!block) return [];
    return block[1]
      .split('\n')
      .filter((l) => l.startsWith('- '))
      .map((l) =>
        l
          .slice(2)
          .trim()
          .replace(/^['"]|['"]$/g, ''),
      );
  };
  const requirePaths = list('require_paths');
  return { requirePaths: requirePaths.length ? requirePaths : ['lib'], extensions: list('extensions') };
}

/** Unpacks vendor/cache/*.gem into app/.gems/<name-version>/; returns RUBYLIB entries (droplet-relative). */
async function unpackVendoredGems(ctx: StageContext): Promise<string[]> {
  const cache = join(ctx.dir, 'vendor', 'cache');
  if (!(await exists(cache))) return [];
  const gems = (await readdir(cache)).filter((n) => n.endsWith('.gem')).sort();
  if (gems.length === 0) return [];
  ctx.log(`Unpacking ${gems.length} gems from vendor/cache`);
  const paths: string[] = [];
  const native: string[] = [];
  for (const file of gems) {
    const full = file.slice(0, -'.gem'.length);
    const scratch = await mkdtemp(`${ctx.dropletDir}.gem-`);
    try {
      // Only plain files and directories: a gem's links could point anywhere.
      const plain = (_path: string, entry: unknown) => {
        const type = (entry as { type?: string }).type;
        return type === 'File' || type === 'Directory';
      };
      await extract({ file: join(cache, file), cwd: scratch, filter: plain, strict: true });
      if (!(await exists(join(scratch, 'data.tar.gz'))) || !(await exists(join(scratch, 'metadata.gz')))) {
        throw new PluginError(`vendor/cache/${file} is not a gem (no data.tar.gz and metadata.gz inside)`);
      }
      const meta = gemMetadata(gunzipSync(await readFile(join(scratch, 'metadata.gz'))).toString('utf8'));
      if (meta.extensions.length) {
        native.push(full);
        continue;
      }
      const dest = join(ctx.dir, GEMS_DIR, full);
      await mkdir(dest, { recursive: true });
      await new Promise<void>((resolve, reject) => {
        createReadStream(join(scratch, 'data.tar.gz'))
          .on('error', reject)
          .pipe(extract({ cwd: dest, filter: plain, strict: true }))
          .on('error', reject)
          .on('finish', () => resolve());
      });
      for (const p of meta.requirePaths) paths.push(`app/${GEMS_DIR}/${full}/${p}`);
      ctx.log(`  ${full}`);
    } catch (err) {
      if (err instanceof PluginError) throw err;
      throw new PluginError(`vendor/cache/${file} could not be unpacked: ${(err as Error).message}`);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
  if (native.length) {
    throw new PluginError(
      `gems with native extensions cannot be staged from vendor/cache: ${native.join(', ')}; use the run host's packaged gem (e.g. Debian's ruby-*) instead`,
    );
  }
  return paths;
}

export const rack: Plugin = {
  name: 'rack',
  version: '1.0.0',
  aliases: ['sinatra', 'ruby'],
  async detect({ dir }) {
    if (await exists(join(dir, 'config.ru'))) return { matched: true, reason: 'config.ru found' };
    const main = await sinatraMain(dir);
    return main ? { matched: true, reason: `${main} requires sinatra` } : { matched: false, reason: 'no config.ru, and no .rb file at the root requires sinatra' };
  },
  async stage(ctx) {
    let startCommand: string | undefined;
    if (await exists(join(ctx.dir, 'config.ru'))) {
      startCommand = 'rackup config.ru -p "$PORT" -o 0.0.0.0';
    } else {
      const main = await sinatraMain(ctx.dir);
      if (main) startCommand = `ruby ${main} -p "$PORT" -o 0.0.0.0`;
    }
    if (!startCommand && !ctx.startCommand) {
      throw new PluginError('no Rack app found: add a config.ru, a Sinatra main file (an .rb that requires sinatra), or a Procfile with a web: line');
    }
    const rubylib = await unpackVendoredGems(ctx);
    if (startCommand) ctx.log(`Start command: ${startCommand}`);
    return {
      startCommand,
      runtime: 'ruby',
      environment: { RACK_ENV: 'production', APP_ENV: 'production' },
      searchPaths: rubylib.length ? { RUBYLIB: rubylib } : undefined,
    };
  },
};
