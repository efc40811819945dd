/**
 * The Procfile (Heroku's format): one `type: command` a line, `#` comments and blank lines
 * allowed. Only `web` is used here; a malformed file is refused with the line that is wrong.
 */
import { PluginError } from './types.ts';

export type Procfile = Map<string, string>;

export function parseProcfile(text: string): Procfile {
  const out: Procfile = new Map();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([A-Za-z0-9_-]+)\s*:\s*(.*)$/.exec(line);
    if (!m) {
      throw new PluginError(`bad Procfile: line ${i + 1} is not "type: command": ${JSON.stringify(raw.slice(0, 100))}`);
    }
    const [, type, command] = m;
    if (command === '') throw new PluginError(`bad Procfile: line ${i + 1}: process type "${type}" has no command`);
    if (out.has(type)) throw new PluginError(`bad Procfile: line ${i + 1}: process type "${type}" is defined twice`);
    out.set(type, command);
  });
  if (out.size === 0) throw new PluginError('bad Procfile: it defines no process type (expected a line like "web: node server.js")');
  return out;
}
