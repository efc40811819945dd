/**
 * Benchmark: stage a generated app through the embedded stack, against a shell pipeline
 * doing the same work, in the same run (issue 3, Benchmark acceptance).
 *
 *   node test/bench/stage-throughput.ts [--size-mb 100] [--files 10000] [--runs 3] [--json FILE]
 *
 * The app is generated deterministically (fixed seeds): `--files` files in 100-file
 * directories, sizes log-normal around the mean and scaled to exactly `--size-mb` MiB; about
 * 60 % of the bytes are source-like text (words from a 4096-word vocabulary, ~3:1 under gzip
 * -6) and 40 % incompressible (AES-CTR keystream, standing in for images, jars, fonts).
 * It is zipped once (the CLI's own zipper, cli/app-archive.ts) and uploaded to the emulator.
 *
 * Then, alternating, `--runs` times each:
 *  (a) the stager: a StagingRequest sent to the staging queue of a local stack (emulator and
 *      `dropwarden stager-worker`, each its own process, as `dropwarden up` runs them) until
 *      its StagingResult arrives on a private reply queue; the task's own timings_ms; the
 *      worker process's peak RSS (VmHWM, reset before each run through /proc/PID/clear_refs).
 *  (b) the shell pipeline: SDK GetObject to a file → `unzip -q` → `cp -a` → `tar czf` →
 *      SDK multipart Upload (8 MiB parts, 4 at a time) of the .tgz.
 * Reports medians and the ratio stager/shell. Droplet sha256s must be equal across runs.
 */
import { execFile as execFileCb } from 'node:child_process';
import { createCipheriv, createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, DeleteMessageCommand, DeleteQueueCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { Upload } from '@aws-sdk/lib-storage';
import { openAppArchive } from '../../cli/app-archive.ts';
import type { StagingRequest, StagingResult } from '../../contracts/staging.ts';
import { s3Client, sqsClient } from '../../lib/aws/clients.ts';
import type { StackConfig } from '../../lib/stack-config.ts';
import { LocalStack } from '../../local/up.ts';

const execFile = promisify(execFileCb);
const MiB = 1024 * 1024;

const { values: args } = parseArgs({
  options: {
    'size-mb': { type: 'string', default: '100' },
    files: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '3' },
    'no-shell': { type: 'boolean', default: false },
    json: { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});
const sizeBytes = Math.round(Number(args['size-mb']) * MiB);
const fileCount = Number(args.files);
const runs = Number(args.runs);

// ---------------------------------------------------------------- the app, deterministically

function xorshift(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

function keystream(bytes: number, seed: string): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([c.update(Buffer.alloc(bytes)), c.final()]);
}

/** Source-like text: lines of words from a fixed vocabulary, indented, with punctuation. */
function textPool(bytes: number): Buffer {
  const rnd = xorshift(42);
  const letters = 'etaoinshrdlcumwfgypbvkjxqz';
  const vocab: string[] = [];
  for (let i = 0; i < 4096; i++) {
    let w = '';
    const len = 2 + Math.floor(rnd() * rnd() * 12);
    for (let j = 0; j < len; j++) w += letters[Math.floor(rnd() * rnd() * letters.length)];
    vocab.push(w);
  }
  const punct = [' = ', '(', ') ', '; ', '.', ', ', ' { ', ' }', ' + ', ' => ', '"', ': '];
  const out = Buffer.alloc(bytes);
  let at = 0;
  while (at < bytes) {
    let line = '  '.repeat(Math.floor(rnd() * 4));
    const words = 3 + Math.floor(rnd() * 9);
    for (let k = 0; k < words; k++) {
      line += vocab[Math.floor(rnd() * rnd() * vocab.length)];
      line += rnd() < 0.3 ? punct[Math.floor(rnd() * punct.length)] : ' ';
    }
    at += out.write(`${line}\n`, at);
  }
  return out;
}

interface GeneratedApp {
  dir: string;
  files: number;
  bytes: number;
  textBytes: number;
}

async function generateApp(dir: string, totalBytes: number, files: number): Promise<GeneratedApp> {
  const rnd = xorshift(7);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  const maxFile = 8 * MiB;
  const weights = Array.from({ length: files }, () => Math.exp(gauss() * 1.3));
  const sum = weights.reduce((a, b) => a + b, 0);
  let sizes = weights.map((w) => Math.min(maxFile, Math.floor((w / sum) * totalBytes)));
  // Scale the rest so the total is exact (clamping took some away).
  let short = totalBytes - sizes.reduce((a, b) => a + b, 0);
  for (let i = 0; short > 0; i = (i + 1) % files) {
    const add = Math.min(short, maxFile - sizes[i]!, Math.ceil(totalBytes / files));
    sizes[i]! += add;
    short -= add;
  }
  const text = textPool(16 * MiB);
  const noise = keystream(16 * MiB, 'dropwarden-bench');
  const textExt = ['js', 'py', 'html', 'css', 'json', 'rb', 'md', 'java'];
  const binExt = ['png', 'jar', 'woff2', 'jpg', 'gz'];
  let textBytes = 0;
  let written = 0;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'app.py'), 'import http.server\n');
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `pkg${String(Math.floor(i / 1000)).padStart(2, '0')}`, `mod${String(Math.floor(i / 100) % 10)}`);
    if (i % 100 === 0) await mkdir(sub, { recursive: true });
    const isText = rnd() < 0.6;
    const pool = isText ? text : noise;
    const size = sizes[i]!;
    const off = Math.floor(rnd() * (pool.length - size));
    const ext = isText ? textExt[i % textExt.length] : binExt[i % binExt.length];
    await writeFile(join(sub, `f${String(i).padStart(6, '0')}.${ext}`), pool.subarray(off, off + size), {
      mode: i % 50 === 0 ? 0o755 : 0o644,
    });
    if (isText) textBytes += size;
    written += size;
  }
  sizes = [];
  return { dir, files: files + 1, bytes: written, textBytes };
}

// ---------------------------------------------------------------- measurements

function readVmHwmKb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function resetVmHwm(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** CPU seconds a process has used (user + system, its waited-for children included). */
function cpuSeconds(pid: number | 'self'): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime, stime, cutime, cstime are fields 14-17 of stat(5); [0] here is field 3.
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  return ticks / 100; // USER_HZ
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function stageOnce(stack: StackConfig, zipUri: string, replyTo: string, uploadKey: string) {
  const sqs = sqsClient(stack);
  const requestId = randomUUID();
  const request: StagingRequest = {
    request_id: requestId,
    app_id: 'bench',
    download_uri: zipUri,
    upload_uri: `s3://${stack.buckets.droplets}/${uploadKey}`,
    reply_to: replyTo,
    properties: { meta: { command: 'python3 app.py' } },
  };
  const started = performance.now();
  await sqs.send(new SendMessageCommand({ QueueUrl: stack.queues.staging, MessageBody: JSON.stringify(request) }));
  for (;;) {
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: replyTo, WaitTimeSeconds: 1, MaxNumberOfMessages: 1 }));
    for (const m of out.Messages ?? []) {
      await sqs.send(new DeleteMessageCommand({ QueueUrl: replyTo, ReceiptHandle: m.ReceiptHandle }));
      const result = JSON.parse(m.Body ?? '{}') as StagingResult;
      if (result.request_id !== requestId) continue;
      const ms = performance.now() - started;
      if (result.error) throw new Error(`staging failed: ${result.error}\n${result.task_log}`);
      return { ms, result };
    }
  }
}

async function shellOnce(stack: StackConfig, zipKey: string, work: string, uploadKey: string) {
  const s3 = s3Client(stack);
  await rm(work, { recursive: true, force: true });
  await mkdir(join(work, 'droplet'), { recursive: true });
  const t: Record<string, number> = {};
  const started = performance.now();
  let mark = started;
  const lap = (name: string) => {
    const now = performance.now();
    t[name] = Math.round(now - mark);
    mark = now;
  };
  const got = await s3.send(new GetObjectCommand({ Bucket: stack.buckets.apps, Key: zipKey }));
  await pipeline(got.Body as Readable, createWriteStream(join(work, 'app.zip')));
  lap('download');
  await execFile('unzip', ['-q', join(work, 'app.zip'), '-d', join(work, 'unzipped')]);
  lap('unzip');
  await execFile('cp', ['-a', join(work, 'unzipped'), join(work, 'droplet', 'app')]);
  lap('cp');
  await execFile('tar', ['czf', join(work, 'droplet.tgz'), '-C', join(work, 'droplet'), '.']);
  lap('tar czf');
  const size = (await stat(join(work, 'droplet.tgz'))).size;
  await new Upload({
    client: s3,
    params: { Bucket: stack.buckets.droplets, Key: uploadKey, Body: createReadStream(join(work, 'droplet.tgz')), ContentLength: size },
    partSize: 8 * MiB,
    queueSize: 4,
  }).done();
  lap('upload');
  const ms = performance.now() - started;
  await rm(work, { recursive: true, force: true });
  return { ms, phases: t, size };
}

// ---------------------------------------------------------------- the run

async function main() {
  const root = await mkdtemp(join(tmpdir(), 'dropwarden-bench-'));
  process.env.DROPWARDEN_STATE_DIR = join(root, 'state'); // never touch a running `up`'s state file
  const say = (s: string) => process.stdout.write(`${s}\n`);
  let stack: LocalStack | undefined;
  try {
    let t0 = performance.now();
    const app = await generateApp(join(root, 'app'), sizeBytes, fileCount);
    say(
      `generated ${app.files} files, ${(app.bytes / MiB).toFixed(1)} MiB ` +
        `(${Math.round((100 * app.textBytes) / app.bytes)} % text, the rest incompressible) in ${Math.round(performance.now() - t0)} ms`,
    );
    t0 = performance.now();
    const zipPath = join(root, 'app.zip');
    const archive = await openAppArchive(app.dir);
    await pipeline(archive.stream, createWriteStream(zipPath));
    const zipSize = (await stat(zipPath)).size;
    say(`zipped to ${(zipSize / MiB).toFixed(1)} MiB in ${Math.round(performance.now() - t0)} ms`);
    await rm(app.dir, { recursive: true, force: true });

    stack = new LocalStack({
      env: process.env,
      port: 0,
      dataDir: join(root, 'data'),
      stagingVisibilitySeconds: 120,
      containers: false, // staging only: no wardend or agent (and no root) needed
      out: (part, line) => (args.verbose ? process.stderr.write(`[${part}] ${line}\n`) : undefined),
    });
    const config = await stack.start();
    const workerPid = stack.pidOf('stager')!;
    const emulatorPid = stack.pidOf('emulator')!;
    const s3 = s3Client(config);
    const sqs = sqsClient(config);
    const zipKey = 'bench/app.zip';
    await new Upload({
      client: s3,
      params: { Bucket: config.buckets.apps, Key: zipKey, Body: createReadStream(zipPath), ContentLength: zipSize },
      partSize: 8 * MiB,
      queueSize: 4,
    }).done();
    await rm(zipPath);
    const zipUri = `s3://${config.buckets.apps}/${zipKey}`;
    const { QueueUrl: replyTo } = await sqs.send(new CreateQueueCommand({ QueueName: `bench-${randomUUID()}` }));
    say(`stack up; stager worker pid ${workerPid}, idle VmHWM ${Math.round(readVmHwmKb(workerPid) / 1024)} MiB`);

    const stager: Array<{ ms: number; rssMiB: number; timings: Record<string, number>; sha256: string; size: number; cpu: Cpu }> = [];
    const shell: Array<{ ms: number; phases: Record<string, number>; size: number; cpu: Cpu }> = [];
    // CPU seconds used during a run: by the pipeline itself (the worker; the bench process and
    // the programs it runs, for the shell) and by the emulator serving it.
    type Cpu = { pipeline: number; emulator: number };
    const cpuDuring = async <T>(pipelinePid: number | 'self', run: () => Promise<T>): Promise<[T, Cpu]> => {
      const before = { pipeline: cpuSeconds(pipelinePid), emulator: cpuSeconds(emulatorPid) };
      const out = await run();
      return [out, { pipeline: cpuSeconds(pipelinePid) - before.pipeline, emulator: cpuSeconds(emulatorPid) - before.emulator }];
    };
    const showCpu = (c: Cpu) => `cpu ${c.pipeline.toFixed(2)} s + emulator ${c.emulator.toFixed(2)} s`;
    // One warm-up staging (JIT, page cache, emulator) not counted.
    await stageOnce(config, zipUri, replyTo!, 'bench/warmup.tgz');
    await s3.send(new DeleteObjectCommand({ Bucket: config.buckets.droplets, Key: 'bench/warmup.tgz' }));
    for (let i = 0; i < runs; i++) {
      resetVmHwm(workerPid);
      const key = `bench/stager-${i}.tgz`;
      const [{ ms, result }, cpu] = await cpuDuring(workerPid, () => stageOnce(config, zipUri, replyTo!, key));
      const rssMiB = readVmHwmKb(workerPid) / 1024;
      await s3.send(new DeleteObjectCommand({ Bucket: config.buckets.droplets, Key: key }));
      const timings = result.timings_ms as Record<string, number>;
      stager.push({ ms, rssMiB, timings, sha256: result.droplet!.sha256, size: result.droplet!.size, cpu });
      say(
        `stager #${i + 1}: ${Math.round(ms)} ms, ${showCpu(cpu)}, peak RSS ${rssMiB.toFixed(0)} MiB, ` +
          `droplet ${(result.droplet!.size / MiB).toFixed(1)} MiB, phases ${JSON.stringify(timings)}`,
      );
      if (!args['no-shell']) {
        const [sh, shCpu] = await cpuDuring('self', () => shellOnce(config, zipKey, join(root, 'shell'), `bench/shell-${i}.tgz`));
        await s3.send(new DeleteObjectCommand({ Bucket: config.buckets.droplets, Key: `bench/shell-${i}.tgz` }));
        shell.push({ ...sh, cpu: shCpu });
        say(`shell  #${i + 1}: ${Math.round(sh.ms)} ms, ${showCpu(shCpu)}, .tgz ${(sh.size / MiB).toFixed(1)} MiB, phases ${JSON.stringify(sh.phases)}`);
      }
    }
    await sqs.send(new DeleteQueueCommand({ QueueUrl: replyTo })).catch(() => {});

    const shas = new Set(stager.map((s) => s.sha256));
    const phaseNames = Object.keys(stager[0]!.timings);
    const summary = {
      app: { files: app.files, mib: +(app.bytes / MiB).toFixed(1), text_pct: Math.round((100 * app.textBytes) / app.bytes), zip_mib: +(zipSize / MiB).toFixed(1) },
      machine: { nproc: cpus().length, cpu: cpus()[0]?.model, node: process.version },
      runs,
      stager_ms: Math.round(median(stager.map((s) => s.ms))),
      stager_runs_ms: stager.map((s) => Math.round(s.ms)),
      stager_phases_ms: Object.fromEntries(phaseNames.map((p) => [p, median(stager.map((s) => s.timings[p] ?? 0))])),
      stager_cpu_s: { pipeline: median(stager.map((s) => s.cpu.pipeline)), emulator: median(stager.map((s) => s.cpu.emulator)) },
      stager_peak_rss_mib: Math.round(Math.max(...stager.map((s) => s.rssMiB))),
      droplet_mib: +(stager[0]!.size / MiB).toFixed(1),
      droplet_sha256_stable: shas.size === 1,
      shell_ms: shell.length ? Math.round(median(shell.map((s) => s.ms))) : undefined,
      shell_runs_ms: shell.map((s) => Math.round(s.ms)),
      shell_cpu_s: shell.length ? { pipeline: median(shell.map((s) => s.cpu.pipeline)), emulator: median(shell.map((s) => s.cpu.emulator)) } : undefined,
      shell_phases_ms: shell.length ? Object.fromEntries(Object.keys(shell[0]!.phases).map((p) => [p, median(shell.map((s) => s.phases[p]!))])) : undefined,
      ratio: shell.length ? +(median(stager.map((s) => s.ms)) / median(shell.map((s) => s.ms))).toFixed(3) : undefined,
    };
    say(JSON.stringify(summary, null, 2));
    if (args.json) await writeFile(args.json, `${JSON.stringify(summary, null, 2)}\n`);
    if (!summary.droplet_sha256_stable) throw new Error(`the droplet's sha256 differed between runs: ${[...shas].join(', ')}`);
  } finally {
    await stack?.stop();
    await rm(root, { recursive: true, force: true });
  }
}

await main();
