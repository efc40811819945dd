/**
 * copy_in and copy_out ownership with every rsync build Debian offers this machine (3.2.7's
 * single-use daemon ignores --chown, 3.5.0's honours it): ids are compared as numbers, and a
 * 0700 source directory (as Ruby's Dir.mktmpdir makes) must be the container user's to read.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RsyncUnusableError } from '../../../container-host/warden/linux/index.ts';
import { rsyncBuilds } from '../../support/host-tools.ts';
import { job, skipReason, startWarden, type Harness } from './helpers.ts';

const builds = skipReason ? [] : rsyncBuilds();

describe.skipIf(skipReason)('warden linux backend: copy ownership', () => {
  it('is tried with more than one rsync build', () => {
    // The archive's release and its security update: the case this file exists for.
    expect(builds.length).toBeGreaterThanOrEqual(2);
  });

  describe.each(builds)('with rsync $version', ({ binary }) => {
    let h: Harness;
    let handle: string;
    let ids: string;
    beforeAll(async () => {
      h = await startWarden(`copy-${process.pid}-${builds.findIndex((b) => b.binary === binary)}`, { rsyncPath: binary });
      ({ handle } = await h.warden.create({ bindMounts: [] }));
      ids = (await h.warden.run(job(handle, 'echo "$(id -u):$(id -g)"'))).stdout.toString().trim();
      expect(ids).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    });
    afterAll(async () => {
      await h?.close();
    });

    it('copy_in leaves what it wrote owned by the container user, a 0700 directory included', async () => {
      const src = mkdtempSync(join(h.dir, 'mktmpdir-'));
      chmodSync(src, 0o700);
      mkdirSync(join(src, 'sub'), { mode: 0o700 });
      writeFileSync(join(src, 'sub', 'secret.txt'), 'inside', { mode: 0o600 });
      await h.warden.copyIn(handle, `${src}/`, '/tmp/in');
      await h.warden.copyIn(handle, join(src, 'sub', 'secret.txt'), '/tmp/droplet.tgz');
      const r = await h.warden.run(job(handle, 'cd /tmp && stat -c "%n %u:%g" in in/sub in/sub/secret.txt droplet.tgz && cat in/sub/secret.txt && rm droplet.tgz'));
      expect(r.stderr.toString()).toBe('');
      expect(r.exitStatus).toBe(0);
      expect(r.stdout.toString()).toBe(`in ${ids}\nin/sub ${ids}\nin/sub/secret.txt ${ids}\ndroplet.tgz ${ids}\ninside`);
    });

    it('copy_out applies owner (a name or uid:gid) to what it copied and to nothing already in the destination', async () => {
      await h.warden.run(job(handle, 'mkdir -p ~/out/d && echo a > ~/out/a.txt && echo b > ~/out/d/b.txt'));
      const dst = mkdtempSync(join(h.dir, 'out-'));
      writeFileSync(join(dst, 'kept.txt'), 'host');
      await h.warden.copyOut(handle, '/home/vcap/out/', dst, '4242:4343');
      for (const path of ['a.txt', 'd', 'd/b.txt']) {
        const st = statSync(join(dst, path));
        expect([path, st.uid, st.gid]).toEqual([path, 4242, 4343]);
      }
      expect(readFileSync(join(dst, 'd/b.txt'), 'utf8')).toBe('b\n');
      expect(statSync(join(dst, 'kept.txt')).uid).toBe(0);
      // A directory's contents copied onto dst: dst takes the directory's attributes, as with rsync.
      expect([statSync(dst).uid, statSync(dst).mode & 0o777]).toEqual([4242, 0o755]);

      await h.warden.copyOut(handle, '/home/vcap/out/a.txt', join(dst, 'named.txt'), 'nobody');
      expect(statSync(join(dst, 'named.txt')).uid).toBe(65534);
      // Without owner, the container's numeric ids come along, as rsync -a keeps them.
      await h.warden.copyOut(handle, '/home/vcap/out/a.txt', join(dst, 'plain.txt'));
      expect(`${statSync(join(dst, 'plain.txt')).uid}:${statSync(join(dst, 'plain.txt')).gid}`).toBe(ids);
      await expect(h.warden.copyOut(handle, '/home/vcap/out/a.txt', dst, '--reference=/')).rejects.toThrow(/not a user/);
    });
  });

  it('refuses at start an rsync whose daemon does not run as the configured user, naming it', async () => {
    const dir = mkdtempSync('/tmp/dw-fake-rsync-');
    const fake = join(dir, 'rsync');
    // The daemon side rewrites its module's uid/gid to root: what a daemon ignoring them does.
    writeFileSync(
      fake,
      `#!/bin/sh
case "$*" in *--daemon*)
  conf="\${1#--config=}"; sed -e 's/^uid = .*/uid = 0/' -e 's/^gid = .*/gid = 0/' "$conf" > "$conf.root"; shift
  exec ${builds[0].binary} --config="$conf.root" "$@";;
esac
exec ${builds[0].binary} "$@"
`,
      { mode: 0o755 },
    );
    const err = await startWarden('copy-fake', { rsyncPath: fake }).then(
      async (h) => {
        await h.close();
        return undefined;
      },
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(RsyncUnusableError);
    expect(err!.message).toMatch(
      new RegExp(`^${fake} \\(rsync\\s+version .*\\) cannot do copy_in/copy_out: its single-use daemon wrote a file as 0:0, not as the module's uid/gid 65534:65534`),
    );
  });
});
