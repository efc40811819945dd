/**
 * The warden calls for one instance's container: create with limits, the droplet copied in and
 * unpacked, net_in, the instance's properties, `./startup` spawned with the run environment,
 * watching it, logs, the droplet's `./stop`, destroy.
 *
 * The classic protocol has no container properties, so the container carries its own: a
 * root-owned file (PROPERTIES_PATH) the app cannot change, read back when an agent adopts it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StartRequest } from '../../contracts/instances.ts';
import { WardenClient, type WardenPool, WardenResponseError } from '../warden/client/index.ts';
import type { InfoResponse, LinkResponse } from '../warden/protocol/types.ts';
import { exportLines, INSTANCE_FDS } from './run-environment.ts';
import { OUT_OF_MEMORY } from '../../contracts/warden-events.ts';

/** The droplet directory in the container: the pool user's home, as on the DEA (HOME = droplet dir). */
export const DROPLET_DIR = '/home/vcap';
/** Handles of the agent's containers start with this; other containers on the warden are not ours. */
export const HANDLE_PREFIX = 'dwa-';
export const PROPERTIES_PATH = '/etc/dropwarden/instance.json';
/** Written by the spawned wrapper when it begins, and when `./startup` returns: what an adopting agent reads. */
const STARTED_PATH = '/tmp/.dropwarden-started';
const EXIT_STATUS_PATH = '/tmp/.dropwarden-exit-status';
const MIB = 1024 * 1024;

export type LogFile = 'stdout.log' | 'stderr.log';

export interface LogFollower {
  output: AsyncIterable<Buffer>;
  cancel(): Promise<void>;
}

/** What a container says about the instance it runs. */
export interface InstanceProperties {
  app_id: string;
  instance_id: string;
  index: number;
  request: StartRequest;
  restarts: number;
  host_port: number;
  container_port: number;
  started_at: string;
  accepted_at: string;
}

/** How the startup job (or the watcher standing in for it) ended. */
export interface JobExit {
  exitStatus: number;
  /** Warden's container events ("out of memory", …) at that moment. */
  events: string[];
  /** What the job wrote on stderr (the adoption watcher explains itself there). */
  stderr: string;
}

/** What the process inside was doing when an agent found the container. */
export type ProbeState =
  /** Startup was spawned and has not returned. */
  | { kind: 'running' }
  | { kind: 'exited'; status: number }
  /** Set up only in part: nothing was spawned. */
  | { kind: 'not-started' }
  /** Warden stopped the container (an OOM kill stops it): `reason` says why. */
  | { kind: 'stopped'; reason: string };

export function crashReason(exit: JobExit): string {
  if (exit.events.includes(OUT_OF_MEMORY)) return OUT_OF_MEMORY;
  const explained = exit.stderr.trim().split('\n').at(-1);
  return explained?.startsWith('dropwarden: ') ? explained.slice('dropwarden: '.length) : `exited with status ${exit.exitStatus}`;
}

function parseProperties(json: string | undefined): InstanceProperties | undefined {
  try {
    return json ? (JSON.parse(json) as InstanceProperties) : undefined;
  } catch {
    return undefined;
  }
}

/** The last `n` lines of `text`, each ending in a newline. */
function lastLines(text: string, n: number): string {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines
    .slice(-n)
    .map((l) => `${l}\n`)
    .join('');
}

const heredoc = (body: string) => `<<'DROPWARDEN_EOF'\n${body}\nDROPWARDEN_EOF`;

export class InstanceContainer {
  readonly handle: string;
  readonly #warden: WardenPool;
  readonly #wire: Buffer;
  /** Connections watching jobs; closed by `unwatch` (agent shutdown). */
  readonly #watchers = new Set<WardenClient>();

  constructor(warden: WardenPool, handle: string) {
    this.#warden = warden;
    this.handle = handle;
    this.#wire = Buffer.from(handle, 'latin1');
  }

  static handleFor(instanceId: string, restarts: number): string {
    return `${HANDLE_PREFIX}${instanceId}-${restarts}`;
  }

  /** The agent's containers on this warden. */
  static async list(warden: WardenPool): Promise<string[]> {
    const { handles = [] } = await warden.call('List', {});
    return handles.map((h) => h.toString('latin1')).filter((h) => h.startsWith(HANDLE_PREFIX));
  }

  static async create(warden: WardenPool, opts: { handle: string; graceTimeS: number }): Promise<InstanceContainer> {
    await warden.call('Create', { handle: Buffer.from(opts.handle, 'latin1'), grace_time: opts.graceTimeS });
    return new InstanceContainer(warden, opts.handle);
  }

  /** Memory always; disk where the warden has disk limits (one without them says so, and the limit is skipped). */
  async limit(memoryMb: number, diskMb: number): Promise<{ disk: boolean }> {
    await this.#warden.call('LimitMemory', { handle: this.#wire, limit_in_bytes: memoryMb * MIB });
    try {
      await this.#warden.call('LimitDisk', { handle: this.#wire, byte_limit: diskMb * MIB });
      return { disk: true };
    } catch (err) {
      if (err instanceof WardenResponseError && err.code === 'not_supported:disk') return { disk: false };
      throw err;
    }
  }

  /** A host port from wardend's pool, mapped to the same port inside. */
  async netIn(): Promise<{ hostPort: number; containerPort: number }> {
    const r = await this.#warden.call('NetIn', { handle: this.#wire });
    return { hostPort: r.host_port, containerPort: r.container_port };
  }

  async installDroplet(tgzPath: string): Promise<void> {
    const inside = '/tmp/droplet.tgz';
    await this.#warden.call('CopyIn', { handle: this.#wire, src_path: tgzPath, dst_path: inside });
    await this.#run(`tar -xzf ${inside} -C ${DROPLET_DIR} && rm -f ${inside}`, { what: 'unpacking the droplet' });
  }

  async writeProperties(props: InstanceProperties): Promise<void> {
    const dir = PROPERTIES_PATH.slice(0, PROPERTIES_PATH.lastIndexOf('/'));
    // One line of JSON: it cannot contain the heredoc's terminator line.
    await this.#run(`umask 077 && mkdir -p ${dir} && cat > ${PROPERTIES_PATH} ${heredoc(JSON.stringify(props))}`, {
      privileged: true,
      what: 'writing the instance properties',
    });
  }

  /**
   * Spawns `./startup -p PORT` with `env` exported (spawn has no environment field), its own
   * output appended to the app's logs. The job's exit status is startup's.
   */
  async spawnStartup(env: Record<string, string>, port: number): Promise<number> {
    const script = [
      `echo $$ > ${STARTED_PATH}`,
      `cd ${DROPLET_DIR} || exit 1`,
      exportLines(env),
      'mkdir -p logs',
      `./startup -p ${port} >>logs/stdout.log 2>>logs/stderr.log </dev/null`,
      'status=$?',
      `echo "$status" > ${EXIT_STATUS_PATH}`,
      'exit "$status"',
    ].join('\n');
    const { job_id } = await this.#warden.call('Spawn', {
      handle: this.#wire,
      script,
      discard_output: true,
      rlimits: { nofile: INSTANCE_FDS },
    });
    return job_id;
  }

  /** Waits for the job on a connection of its own (a link can last for days). */
  async watch(jobId: number): Promise<JobExit> {
    const client = await WardenClient.connect(this.#warden.socketPath);
    this.#watchers.add(client);
    try {
      const r: LinkResponse = await client.call('Link', { handle: this.#wire, job_id: jobId });
      return { exitStatus: r.exit_status ?? 255, events: r.info?.events ?? [], stderr: r.stderr?.toString() ?? '' };
    } finally {
      this.#watchers.delete(client);
      client.close();
    }
  }

  /**
   * After an agent restart the startup job is not ours to link (the old agent's link consumed
   * it), so a watcher job waits for the exit status the wrapper writes, or for the app to go.
   */
  async watchAdopted(): Promise<JobExit> {
    const script = `cd ${DROPLET_DIR} || exit 1
for _ in $(seq 50); do [ -s run.pid ] || [ -s ${EXIT_STATUS_PATH} ] && break; sleep 0.2; done
pid=$(cat run.pid 2>/dev/null)
until [ -s ${EXIT_STATUS_PATH} ]; do
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    sleep 2
    [ -s ${EXIT_STATUS_PATH} ] && break
    echo "dropwarden: the app process ended while no agent was watching (exit status unknown)" >&2
    exit 255
  fi
  sleep 1
done
exit "$(cat ${EXIT_STATUS_PATH})"`;
    const { job_id } = await this.#warden.call('Spawn', { handle: this.#wire, script });
    return this.watch(job_id);
  }

  /** Closes the watching connections: the jobs run on, for the next agent. */
  unwatch(): void {
    for (const client of this.#watchers) client.close();
  }

  async info(): Promise<InfoResponse> {
    return this.#warden.call('Info', { handle: this.#wire });
  }

  /**
   * The properties and what the process is doing: one privileged run, or, in a container warden
   * stopped (which takes no jobs), the properties copied out.
   */
  async probe(): Promise<{ props?: InstanceProperties; state: ProbeState }> {
    const info = await this.info();
    if (info.state !== 'active') {
      const events = info.events ?? [];
      const reason = events.includes(OUT_OF_MEMORY) ? OUT_OF_MEMORY : `the container was ${info.state ?? 'stopped'}${events.length ? ` (${events.join(', ')})` : ''}`;
      const text = await this.#copyOut([PROPERTIES_PATH]);
      return { props: parseProperties(text.get(PROPERTIES_PATH)), state: { kind: 'stopped', reason } };
    }
    const out = await this.#run(
      `cd ${DROPLET_DIR}
if [ -s ${EXIT_STATUS_PATH} ]; then echo "exited $(cat ${EXIT_STATUS_PATH})"
elif [ -e ${STARTED_PATH} ]; then echo running
else echo not-started; fi
cat ${PROPERTIES_PATH} 2>/dev/null || true`,
      { privileged: true, what: 'reading the instance properties' },
    );
    const nl = out.indexOf('\n');
    const [status, json] = [out.slice(0, nl), out.slice(nl + 1).trim()];
    const exited = /^exited (\d+)$/.exec(status);
    const state: ProbeState = exited ? { kind: 'exited', status: Number(exited[1]) } : status === 'running' ? { kind: 'running' } : { kind: 'not-started' };
    return { props: parseProperties(json), state };
  }

  /** The last lines of the app's logs (tail's `==> file <==` headers), also from a container stopped by an OOM kill. */
  async logsTail(lines: number): Promise<string> {
    try {
      return await this.#run(`cd ${DROPLET_DIR}/logs 2>/dev/null && tail -n ${lines} stdout.log stderr.log 2>/dev/null; true`, { what: 'reading the logs' });
    } catch (err) {
      if (!(err instanceof WardenResponseError) || err.code !== 'bad_state') throw err;
    }
    // Stopped containers take no jobs, but copy_out still works.
    const logs = [`${DROPLET_DIR}/logs/stdout.log`, `${DROPLET_DIR}/logs/stderr.log`];
    const texts = await this.#copyOut(logs);
    return logs
      .filter((path) => texts.has(path))
      .map((path) => `==> ${path.slice(path.lastIndexOf('/') + 1)} <==\n${lastLines(texts.get(path)!, lines)}`)
      .join('\n');
  }

  /** The last `lines` lines of each of `files` (names in logs/), one after the other. */
  async readLogs(files: LogFile[], lines: number): Promise<string> {
    return this.#run(`cd ${DROPLET_DIR}/logs 2>/dev/null && tail -q -n ${lines} ${files.join(' ')} 2>/dev/null; true`, { what: 'reading the logs' });
  }

  /**
   * `tail -F` of `files` in the container, streamed on a connection of its own. The job prints
   * its pid first, so that `cancel` can end it: a stream that is left does not end its job.
   */
  async followLogs(files: LogFile[], lines: number): Promise<LogFollower> {
    const { job_id } = await this.#warden.call('Spawn', {
      handle: this.#wire,
      script: `cd ${DROPLET_DIR}/logs 2>/dev/null || exit 0\necho $$\nexec tail -q -n ${lines} -F ${files.join(' ')} 2>/dev/null`,
    });
    const client = await WardenClient.connect(this.#warden.socketPath);
    let pid: string | undefined;
    const stream = client.stream({ handle: this.#wire, job_id });
    async function* output(): AsyncGenerator<Buffer> {
      let head = Buffer.alloc(0);
      for await (const r of stream) {
        if (!r.data || r.name !== 'stdout') continue;
        if (pid !== undefined) {
          yield r.data;
          continue;
        }
        head = Buffer.concat([head, r.data]);
        const nl = head.indexOf(10);
        if (nl < 0) continue;
        pid = head.subarray(0, nl).toString();
        if (head.length > nl + 1) yield head.subarray(nl + 1);
      }
    }
    return {
      output: output(),
      cancel: async () => {
        client.close();
        if (pid && /^\d+$/.test(pid)) await this.#run(`kill ${pid} 2>/dev/null; true`, { what: 'ending a log tail' }).catch(() => undefined);
      },
    };
  }

  /** The droplet's `./stop` (TERM, then KILL after its grace), then warden's own stop for anything left. */
  async stopApp(): Promise<void> {
    await this.#run(`cd ${DROPLET_DIR} && [ -x ./stop ] && [ -s run.pid ] && ./stop "$(cat run.pid)"; true`, { what: 'stopping the app' }).catch(() => undefined);
    await this.#warden.call('Stop', { handle: this.#wire, kill: true }).catch(() => undefined);
  }

  /** Gone already counts as destroyed. */
  async destroy(): Promise<void> {
    this.unwatch();
    try {
      await this.#warden.call('Destroy', { handle: this.#wire });
    } catch (err) {
      if (!(err instanceof WardenResponseError && err.code === 'unknown_handle')) throw err;
    }
  }

  /** The text of each file that exists (copied out through a temp dir on the host). */
  async #copyOut(paths: string[]): Promise<Map<string, string>> {
    const dir = await mkdtemp(join(tmpdir(), 'dw-agent-copy-'));
    const out = new Map<string, string>();
    try {
      for (const [i, path] of paths.entries()) {
        const dest = join(dir, String(i));
        const copied = await this.#warden.call('CopyOut', { handle: this.#wire, src_path: path, dst_path: dest }).then(
          () => true,
          () => false,
        );
        if (copied) out.set(path, await readFile(dest, 'utf8'));
      }
      return out;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** A `run` whose failure (non-zero exit) is an error naming what it was for, with its stderr. */
  async #run(script: string, opts: { what: string; privileged?: boolean }): Promise<string> {
    const r = await this.#warden.call('Run', { handle: this.#wire, script, privileged: opts.privileged ?? false });
    if (r.exit_status !== 0) {
      const stderr = r.stderr?.toString().trim();
      throw new ContainerStepError(`${opts.what} failed in container ${this.handle} (exit status ${r.exit_status})${stderr ? `: ${stderr}` : ''}`);
    }
    return r.stdout?.toString() ?? '';
  }
}

/** A step inside the container (unpack, properties, stop) failed. */
export class ContainerStepError extends Error {
  override name = 'ContainerStepError';
}
