import { readFile } from 'node:fs/promises';

export class UnknownGroupError extends Error {
  override name = 'UnknownGroupError';
}

/** A group name (looked up in /etc/group) or a numeric gid → the gid. */
export async function resolveGid(group: string | number, groupFile = '/etc/group'): Promise<number> {
  if (typeof group === 'number') return group;
  if (/^\d+$/.test(group)) return Number(group);
  const text = await readFile(groupFile, 'utf8');
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new UnknownGroupError(`socket group "${group}" is not in ${groupFile}; create it (groupadd ${group}) or set socketGroup to a gid`);
}
