/**
 * `bin/release` prints YAML; this reads the small part of it the classic buildpack API uses:
 *
 *   ---
 *   addons: []
 *   config_vars:
 *     PATH: "/app/bin:/usr/bin"
 *   default_process_types:
 *     web: bundle exec rackup -p $PORT
 *
 * Top-level keys whose value is a scalar, an empty `{}`/`[]`, a block list (ignored) or a block
 * map of scalars; scalars plain, 'single' or "double" quoted; `#` comments. Anything else is
 * refused with its line. Kept behind this one function so that a YAML library (`yaml`) can take
 * its place once the package depends on one.
 */
import { PluginError } from '../api/types.ts';

export interface Release {
  default_process_types: Record<string, string>;
  config_vars: Record<string, string>;
}

type Value = string | Record<string, string> | string[];

function scalar(raw: string, where: string): string {
  const s = raw.trim();
  if (s.startsWith("'")) {
    const m = /^'((?:[^']|'')*)'\s*(#.*)?$/.exec(s);
    if (!m) throw new PluginError(`${where}: unterminated single-quoted string`);
    return m[1].replace(/''/g, "'");
  }
  if (s.startsWith('"')) {
    const m = /^"((?:[^"\\]|\\.)*)"\s*(#.*)?$/.exec(s);
    if (!m) throw new PluginError(`${where}: unterminated double-quoted string`);
    const escapes: Record<string, string> = { n: '\n', t: '\t', '"': '"', '\\': '\\', '/': '/', '0': '\0', r: '\r' };
    return m[1].replace(/\\(.)/g, (_, c: string) => {
      if (!(c in escapes)) throw new PluginError(`${where}: unsupported escape \\${c}`);
      return escapes[c];
    });
  }
  if (/^[|>]/.test(s)) throw new PluginError(`${where}: block scalars (| or >) are not supported`);
  const value = s.replace(/\s+#.*$/, '');
  return value === '~' || value === 'null' ? '' : value;
}

function keyValue(line: string, where: string): [string, string] {
  const m = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^:#\s][^:#]*?)\s*:(?:\s+(.*)|\s*)$/.exec(line);
  if (!m) throw new PluginError(`${where}: expected "key: value"`);
  const key = m[1].startsWith('"') || m[1].startsWith("'") ? scalar(m[1], where) : m[1];
  return [key, (m[2] ?? '').trim()];
}

export function parseRelease(text: string, source = 'bin/release'): Release {
  const top = new Map<string, Value>();
  let block: { key: string; value: Record<string, string> | string[]; indent?: number } | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const where = `${source} output, line ${i + 1}`;
    if (/^\s*(#.*)?$/.test(raw) || raw === '---' || raw === '...') continue;
    if (raw.includes('\t') && /^\s*\t/.test(raw)) throw new PluginError(`${where}: tabs are not allowed for indentation`);
    const indent = raw.length - raw.trimStart().length;
    const line = raw.trim();
    if (indent === 0) {
      const [key, rest] = keyValue(line, where);
      if (rest === '' || rest.startsWith('#')) {
        block = { key, value: {} };
        top.set(key, block.value);
      } else if (rest === '{}' || rest === '[]') {
        block = undefined;
        top.set(key, rest === '{}' ? {} : []);
      } else {
        block = undefined;
        top.set(key, scalar(rest, where));
      }
      continue;
    }
    if (!block) throw new PluginError(`${where}: indented line outside a map`);
    if (block.indent !== undefined && indent !== block.indent) throw new PluginError(`${where}: nested maps are not supported`);
    block.indent = indent;
    if (line.startsWith('- ') || line === '-') {
      if (!Array.isArray(block.value)) {
        if (Object.keys(block.value).length) throw new PluginError(`${where}: a list item inside a map`);
        block.value = [];
        top.set(block.key, block.value);
      }
      block.value.push(scalar(line.slice(1), where));
      continue;
    }
    if (Array.isArray(block.value)) throw new PluginError(`${where}: a map entry inside a list`);
    const [key, rest] = keyValue(line, where);
    if (rest === '' || rest === '{}' || rest === '[]') throw new PluginError(`${where}: nested maps are not supported`);
    block.value[key] = scalar(rest, where);
  }
  const map = (key: string): Record<string, string> => {
    const v = top.get(key);
    if (v === undefined || v === '') return {};
    if (typeof v === 'string' || Array.isArray(v)) {
      if (Array.isArray(v) && v.length === 0) return {};
      throw new PluginError(`${source} output: ${key} must be a map`);
    }
    return v;
  };
  return { default_process_types: map('default_process_types'), config_vars: map('config_vars') };
}
