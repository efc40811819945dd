/**
 * php: an app with an index.php, served by PHP's built-in server (`php -S`, from php-cli on
 * the run host) through a small router written into the droplet (`support/php_router.php`)
 * that keeps dotfiles (.env, .git) private; everything else is PHP's own behaviour.
 */
import { join } from 'node:path';
import { detectMarker, exists, writeSupportFile } from '../api/files.ts';
import { type Plugin, PluginError } from '../api/types.ts';

const ROUTER_FILE = 'php_router.php';
const ROUTER = `<?php
// Router for PHP's built-in server, written by dropwarden's php plugin: dotfiles stay private,
// everything else is served as php -S serves it.
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) ?: '/';
if (preg_match('#(^|/)\\.#', rawurldecode($path))) {
    http_response_code(404);
    echo "Not Found\\n";
    return true;
}
return false;
`;

export const php: Plugin = {
  name: 'php',
  version: '1.0.0',
  detect: ({ dir }) => detectMarker(dir, 'index.php'),
  async stage(ctx) {
    if (!(await exists(join(ctx.dir, 'index.php'))) && !ctx.startCommand) {
      throw new PluginError('a PHP app needs an index.php at its root');
    }
    const router = await writeSupportFile(ctx.dropletDir, ROUTER_FILE, ROUTER);
    return { startCommand: `php -S "0.0.0.0:$PORT" -t . ${router}`, runtime: 'php' };
  },
};
