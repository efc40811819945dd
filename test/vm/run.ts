/**
 * Runs a command (by default the guest suite, see DEFAULT_SUITE) inside a QEMU guest that boots
 * Debian's 6.1 kernel with cgroup v2 only, so wardend's v2 backend meets a real kernel.
 *
 *   npm run test:vm                       the guest suite
 *   npm run test:vm -- vitest run FILES   any command, run in this checkout inside the guest
 *
 * The guest's root is this machine's root, shared read-only over 9p with a tmpfs overlay for
 * writes; /tmp is an ext4 scratch disk (container depots, loop-mounted disk images). The guest's
 * init prints marker lines on the console (VM-INIT, VM-GUEST, VM-EXIT=<n>) that this script
 * parses; the exit status is the guest command's. See test/vm/README.md.
 *
 * Environment: DROPWARDEN_VM_ACCEL=tcg|kvm (tcg by default: a KVM guest was seen to hang on
 * this host), DROPWARDEN_VM_TIMEOUT_S (overall, default 1500), DROPWARDEN_VM_MEM (default 3G),
 * DROPWARDEN_VM_DIR (work dir for the initramfs and scratch image, default /tmp/dropwarden-vm).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '..', '..');
const WORK = process.env.DROPWARDEN_VM_DIR ?? '/tmp/dropwarden-vm';
const ACCEL = process.env.DROPWARDEN_VM_ACCEL ?? 'tcg';
const TIMEOUT_S = Number(process.env.DROPWARDEN_VM_TIMEOUT_S ?? 1500);
const MEM = process.env.DROPWARDEN_VM_MEM ?? '3G';
const SCRATCH_SIZE = '6G';

/**
 * Small enough for a few minutes under TCG: the cgroup v2 checks against the kernel (a), the
 * real daemon over the wire, restarts included (b), and an agent start of a droplet read back
 * from the kernel's cgroup files (c). The whole of test/warden/linux and
 * test/warden/integration takes about 16 minutes here: `npm run test:vm -- vitest run test/warden`.
 */
const DEFAULT_FILES = [
  'test/warden/linux/cgroup-v2-kernel.test.ts',
  'test/warden/integration/wire.test.ts',
  'test/warden/integration/restart.test.ts',
  'test/agent/start-cgroup.test.ts',
];
/** Tests of those files the default run leaves out, and why; printed on every run. */
const LEFT_OUT: Array<[name: string, why: string]> = [
  [
    'grace_time keeps counting across a restart',
    'timing: a 6 s grace with 2.5 s spent before the SIGKILL; restarting wardend under TCG takes longer than the 3.5 s left',
  ],
];
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const DEFAULT_SUITE = ['vitest', 'run', ...DEFAULT_FILES, '-t', `^(?!.*(${LEFT_OUT.map(([n]) => escape(n)).join('|')})).*$`];

/** Modules the initramfs loads before it can mount the root (the rest come from the shared root). */
const INITRAMFS_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_console', '9pnet_virtio', '9p', 'overlay', 'ext4'];
/** Loaded from the shared root once it is mounted: what the networking, disk and shaping code use. */
const GUEST_MODULES = [
  'loop',
  'veth',
  'bridge',
  'br_netfilter',
  'nf_tables',
  'nft_compat',
  'nft_chain_nat',
  'nf_nat',
  'nf_conntrack',
  'xt_conntrack',
  'xt_MASQUERADE',
  'xt_nat',
  'xt_comment',
  'xt_multiport',
  'xt_tcpudp',
  'xt_owner',
  'xt_mark',
  'iptable_filter',
  'iptable_nat',
  'sch_tbf',
  'sch_ingress',
  'cls_u32',
  'act_police',
  'ifb',
];

/** What the harness needs on the host, and the Debian package that brings each. */
const HOST_NEEDS: Array<[path: string, pkg: string]> = [
  ['/usr/bin/qemu-system-x86_64', 'qemu-system-x86'],
  ['/bin/busybox', 'busybox-static'],
  ['/sbin/mkfs.ext4', 'e2fsprogs'],
];

function log(msg: string): void {
  process.stdout.write(`[vm] ${msg}\n`);
}

function fail(msg: string): never {
  process.stderr.write(`[vm] FAILED: ${msg}\n`);
  process.exit(1);
}

function isStaticBusybox(): boolean {
  if (!existsSync('/bin/busybox')) return false;
  const out = spawnSync('file', ['-L', '/bin/busybox'], { encoding: 'utf8' });
  // Without `file`, trust it when ldd says so (or when it is Debian's busybox-static, which dpkg knows).
  if (out.status === 0) return /statically linked|static-pie/.test(out.stdout);
  return spawnSync('dpkg', ['-s', 'busybox-static'], { stdio: 'ignore' }).status === 0;
}

/** The newest 6.1 kernel with its modules, or undefined. */
function findKernel(): { version: string; vmlinuz: string } | undefined {
  if (!existsSync('/boot')) return undefined;
  const versions = readdirSync('/boot')
    .filter((f) => /^vmlinuz-6\.1\./.test(f))
    .map((f) => f.slice('vmlinuz-'.length))
    .filter((v) => existsSync(`/lib/modules/${v}/modules.dep`))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const version = versions.at(-1);
  return version ? { version, vmlinuz: `/boot/vmlinuz-${version}` } : undefined;
}

function ensureHostPackages(): void {
  const wanted = HOST_NEEDS.filter(([path, pkg]) => (pkg === 'busybox-static' ? !isStaticBusybox() : !existsSync(path))).map(([, pkg]) => pkg);
  if (!findKernel()) wanted.push('linux-image-amd64');
  if (!wanted.length) return;
  if (process.getuid?.() !== 0) fail(`missing Debian packages ${wanted.join(' ')} and not root to install them`);
  log(`installing Debian packages: ${wanted.join(' ')} (apt-get install -y --no-install-recommends --no-upgrade)`);
  const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', '--no-upgrade', ...wanted], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) fail(`apt-get install ${wanted.join(' ')} failed (exit ${r.status})`);
  if (!findKernel()) fail('no /boot/vmlinuz-6.1.* with /lib/modules after installing linux-image-amd64');
}

/** insmod paths, dependencies first, for the modules the initramfs loads itself. */
function moduleFiles(version: string, modules: string[]): string[] {
  const files: string[] = [];
  for (const m of modules) {
    const out = execFileSync('modprobe', ['-S', version, '--show-depends', m], { encoding: 'utf8' });
    for (const line of out.split('\n')) {
      const match = /^insmod (\S+)/.exec(line);
      if (match && !files.includes(match[1])) files.push(match[1]);
    }
  }
  return files;
}

/** The guest's PID 1, run by busybox from the initramfs. */
function initScript(modules: string[]): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "VM-INIT uptime=$(cut -d' ' -f1 /proc/uptime)"
die() { echo "VM-ERROR $*"; dmesg | tail -20; echo "VM-EXIT=125"; poweroff -f; }
${modules.map((m) => `insmod /modules/${m.split('/').pop()} || die "insmod ${m.split('/').pop()}"`).join('\n')}
mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 root /lower || die "mounting the 9p root"
mount -t tmpfs -o mode=0755 tmpfs /rw || die "mounting the overlay tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || die "mounting the overlay root"
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
# The checkout stays visible where it is, also when it lives under /tmp (CI clones there), which
# the scratch disk is about to cover: held aside by a bind mount and put back on top.
mkdir -p /repo && mount --bind /newroot${shq(REPO)} /repo || die "binding the checkout ${REPO}"
mount -t ext4 /dev/vda /newroot/tmp || die "mounting the scratch disk on /tmp"
chmod 1777 /newroot/tmp
mkdir -p /newroot${shq(REPO)} && mount --move /repo /newroot${shq(REPO)} || die "putting the checkout back at ${REPO}"
for d in proc sys dev; do mount --move /$d /newroot/$d || die "moving /$d"; done
mount -t cgroup2 -o nsdelegate cgroup2 /newroot/sys/fs/cgroup || die "mounting cgroup2"
# -cpuset etc. stay off; what wardend uses (and io, which the brief asks for) are enabled.
echo "+cpu +memory +pids +io" > /newroot/sys/fs/cgroup/cgroup.subtree_control || die "enabling cgroup controllers"
mkdir -p /newroot/dev/pts /newroot/dev/shm /newroot/run
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /newroot/dev/pts
# The links a host's init (systemd, Docker) makes in /dev; bash's process substitution opens /dev/fd/N.
ln -sfn /proc/self/fd /newroot/dev/fd && ln -sf /proc/self/fd/0 /newroot/dev/stdin && ln -sf /proc/self/fd/1 /newroot/dev/stdout && ln -sf /proc/self/fd/2 /newroot/dev/stderr || die "linking /dev/fd"
mount -t tmpfs tmpfs /newroot/dev/shm
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
cp /stage2.sh /newroot/run/dw-vm-stage2.sh
cp /command /newroot/run/dw-vm-command
exec switch_root /newroot /bin/busybox sh /run/dw-vm-stage2.sh
`;
}

/** Runs in the guest's real root (this machine's root, shared) as PID 1. */
function stage2Script(): string {
  const modules = GUEST_MODULES.join(' ');
  return `export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
bb=/bin/busybox
$bb hostname dw-vm
$bb ip link set lo up
for m in ${modules}; do /sbin/modprobe -q $m 2>/dev/null || echo "[guest] module $m not loaded"; done
# Mount namespaces of the containers need a private (not shared) propagation model like a host's.
$bb mount --make-rprivate / 2>/dev/null
mode="cgroup2 only"
$bb grep -qE ' - cgroup ' /proc/self/mountinfo && mode="cgroup v1 hierarchies present"
echo "VM-GUEST Linux $($bb uname -r), $mode (controllers: $($bb cat /sys/fs/cgroup/cgroup.controllers); subtree_control: $($bb cat /sys/fs/cgroup/cgroup.subtree_control)), nproc $($bb nproc), mem $($bb awk '/MemTotal/{print $2" kB"}' /proc/meminfo)"
echo "VM-STAGE2 uptime=$($bb cut -d' ' -f1 /proc/uptime)"
cd ${shq(REPO)} || { echo "VM-ERROR no ${REPO} in the guest"; echo "VM-EXIT=125"; $bb poweroff -f; }
export PATH=${shq(REPO)}/node_modules/.bin:$PATH DROPWARDEN_EXPECT_CGROUP2=1 CI=1 TMPDIR=/tmp
# A shell of its own: PID 1 (this one) stays to reap orphans and power off.
$bb sh /run/dw-vm-command </dev/null
rc=$?
echo "VM-END uptime=$($bb cut -d' ' -f1 /proc/uptime)"
$bb sync
echo ""
echo "VM-EXIT=$rc"
$bb poweroff -f
`;
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function buildInitramfs(version: string, command: string[]): string {
  const dir = join(WORK, 'initramfs');
  rmSync(dir, { recursive: true, force: true });
  for (const d of ['bin', 'modules', 'proc', 'sys', 'dev', 'tmp']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  symlinkSync('busybox', join(dir, 'bin/sh'));
  const modules = moduleFiles(version, INITRAMFS_MODULES);
  for (const m of modules) copyFileSync(m, join(dir, 'modules', m.split('/').pop()!));
  writeFileSync(join(dir, 'init'), initScript(modules), { mode: 0o755 });
  writeFileSync(join(dir, 'stage2.sh'), stage2Script());
  writeFileSync(join(dir, 'command'), `${command.map(shq).join(' ')}\n`);
  const image = join(WORK, 'initramfs.cpio');
  execFileSync('sh', ['-c', `cd ${shq(dir)} && find . | /bin/busybox cpio -o -H newc > ${shq(image)} 2>/dev/null`]);
  log(
    `initramfs: ${modules.length} modules (${INITRAMFS_MODULES.join(', ')} and dependencies), busybox; guest loads ${GUEST_MODULES.length} more from /lib/modules/${version}`,
  );
  return image;
}

function makeScratch(): string {
  const image = join(WORK, 'scratch.img');
  rmSync(image, { force: true });
  execFileSync('truncate', ['-s', SCRATCH_SIZE, image]);
  execFileSync('/sbin/mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=1,lazy_journal_init=1', image]);
  return image;
}

async function main(): Promise<void> {
  if (process.platform !== 'linux' || process.arch !== 'x64') fail(`needs an x86_64 Linux host (this is ${process.platform}/${process.arch})`);
  ensureHostPackages();
  const kernel = findKernel()!;
  mkdirSync(WORK, { recursive: true });
  const args = process.argv.slice(2);
  const command = args.length ? args : DEFAULT_SUITE;
  if (!args.length) for (const [name, why] of LEFT_OUT) log(`left out of the default suite: "${name}" (${why})`);
  const initrd = buildInitramfs(kernel.version, command);
  const scratch = makeScratch();

  if (ACCEL === 'kvm' && !existsSync('/dev/kvm')) fail('DROPWARDEN_VM_ACCEL=kvm but /dev/kvm is missing');
  const accel = ACCEL === 'kvm' ? ['-accel', 'kvm'] : ['-accel', 'tcg,thread=multi'];
  const qemu = [
    ...accel,
    '-cpu',
    process.env.DROPWARDEN_VM_CPU ?? 'max',
    '-m',
    MEM,
    '-smp',
    '2',
    '-nographic',
    '-no-reboot',
    '-kernel',
    kernel.vmlinuz,
    '-initrd',
    initrd,
    '-append',
    'console=ttyS0 panic=-1 quiet loglevel=4 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 rw',
    '-virtfs',
    'local,path=/,mount_tag=root,security_model=none,readonly=on,multidevs=remap',
    '-drive',
    `file=${scratch},format=raw,if=virtio,cache=unsafe`,
    '-nic',
    'none',
  ];
  log(`kernel ${kernel.vmlinuz}, accel ${ACCEL}, ${MEM}, 2 vCPUs, timeout ${TIMEOUT_S}s`);
  log(`guest command (in ${REPO}): ${command.join(' ')}`);

  const started = Date.now();
  const secs = (): string => ((Date.now() - started) / 1000).toFixed(1);
  const child = spawn('qemu-system-x86_64', qemu, { stdio: ['pipe', 'pipe', 'pipe'] });
  let exitCode: number | undefined;
  let guestLine: string | undefined;
  let initAt: string | undefined;
  let error: string | undefined;
  let buf = '';
  const onLine = (line: string): void => {
    // The firmware's escape sequences can share a line with the first marker.
    // (They can hold a bare \r, which `.` does not match: the marker is searched for, not anchored.)
    const bare = line.replace(/\r$/, '');
    const clean = /VM-(INIT|GUEST|ERROR|EXIT)[\s\S]*$/.exec(bare)?.[0] ?? bare;
    process.stdout.write(`${line.replace(/\r$/, '')}\n`);
    if (clean.startsWith('VM-INIT') && !initAt) {
      initAt = secs();
      log(`guest init started after ${initAt}s (${clean})`);
    }
    const guest = /^VM-GUEST (.*)$/.exec(clean);
    if (guest) {
      guestLine = guest[1];
      log(`guest: ${guestLine}`);
    }
    const err = /^VM-ERROR (.*)$/.exec(clean);
    if (err) error = err[1];
    const exit = /^VM-EXIT=(\d+)$/.exec(clean);
    if (exit) exitCode = Number(exit[1]);
  };
  child.stdout.on('data', (b: Buffer) => {
    buf += b.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
    process.stderr.write(b);
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, TIMEOUT_S * 1000);
  const status = await new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  clearTimeout(timer);
  if (buf) onLine(buf);

  log(`qemu exited (${status ?? 'killed'}) after ${secs()}s`);
  if (guestLine) log(`guest: ${guestLine}`);
  if (timedOut) fail(`the VM ran past ${TIMEOUT_S}s${initAt ? '' : ' without reaching init'}; killed`);
  if (!initAt) fail(`the VM never reached init (qemu exit ${status}${stderr ? `: ${stderr.trim().split('\n').at(-1)}` : ''})`);
  if (error) fail(`guest set-up failed: ${error}`);
  if (exitCode === undefined) fail('the guest powered off without reporting an exit status (kernel panic or init died?)');
  if (!guestLine || !guestLine.includes('cgroup2 only')) fail(`the guest is not cgroup v2 only: ${guestLine ?? 'no VM-GUEST line'}`);
  log(exitCode === 0 ? `PASSED in the guest (${secs()}s, init after ${initAt}s)` : `guest command FAILED with exit ${exitCode} (${secs()}s)`);
  process.exit(exitCode === 0 ? 0 : 1);
}

await main();
