/**
 * `bin/release` prints YAML; the classic buildpack API reads two maps from it:
 *
 *   ---
 *   addons: []
 *   config_vars:
 *     PATH: "/app/bin:/usr/bin"
 *   default_process_types:
 *     web: bundle exec rackup -p $PORT
 *
 * Parsed with the `yaml` library; anything that is not YAML, or whose two maps are not maps of
 * strings, is refused with a message naming the buildpack and what is wrong.
 */
import { parse, YAMLParseError } from 'yaml';
import { PluginError } from '../api/types.ts';

export interface Release {
  default_process_types: Record<string, string>;
  config_vars: Record<string, string>;
}

function stringMap(value: unknown, key: string, source: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new PluginError(`${source}: ${key} must be a map of names to strings`);
  }
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) {
    if (v !== null && typeof v === 'object') throw new PluginError(`${source}: ${key}.${name} must be a string, not a nested value`);
    out[name] = v === null ? '' : String(v);
  }
  return out;
}

export function parseRelease(text: string, source = 'bin/release'): Release {
  let doc: unknown;
  try {
    doc = parse(text) ?? {};
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const line = err.linePos?.[0].line;
      throw new PluginError(`${source} printed invalid YAML${line ? ` (line ${line})` : ''}: ${err.message.split('\n')[0]}`);
    }
    throw err;
  }
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new PluginError(`${source} must print a YAML map`);
  const top = doc as Record<string, unknown>;
  return {
    default_process_types: stringMap(top.default_process_types, 'default_process_types', source),
    config_vars: stringMap(top.config_vars, 'config_vars', source),
  };
}
