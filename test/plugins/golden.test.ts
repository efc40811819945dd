/**
 * Golden files for the generated droplet scripts: the templates with fixed inputs, and the
 * startup each plugin writes for its fixture. A change shows up as a diff to review; accept
 * it with `npx vitest run test/plugins/golden.test.ts -u`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { renderStartup } from '../../resources/templates/startup.ts';
import { renderStop } from '../../resources/templates/stop.ts';
import { cleanup, stageApp } from './helpers.ts';

afterEach(cleanup);

it('startup template', async () => {
  const script = renderStartup({
    startCommand: `python3 "$HOME/support/x.py" it's:quoted`,
    environment: { Z_LAST: 'z', A_FIRST: "a 'quoted' $value" },
    searchPaths: { PATH: ['app/node_modules/.bin'], RUBYLIB: ['app/.gems/a-1/lib', 'app/.gems/b-2/lib'] },
    generator: 'golden 1.0',
  });
  await expect(script).toMatchFileSnapshot('golden/startup.sh');
});

it('stop template', async () => {
  await expect(renderStop({ generator: 'golden 1.0' })).toMatchFileSnapshot('golden/stop.sh');
});

it.each(['node-hello', 'python-wsgi', 'ruby-rack', 'ruby-vendored', 'php-hello', 'static-site'])('%s: generated startup and stop', async (fixture) => {
  const { dir } = await stageApp(fixture);
  await expect(readFileSync(join(dir, 'startup'), 'utf8')).toMatchFileSnapshot(`golden/${fixture}.startup.sh`);
  await expect(readFileSync(join(dir, 'stop'), 'utf8')).toMatchFileSnapshot(`golden/${fixture}.stop.sh`);
});
