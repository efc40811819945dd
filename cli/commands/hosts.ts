/**
 * `dropwarden hosts [--stack NAME] [--json]`: the container hosts and their free capacity.
 *
 * On AWS (`--stack`, whose `ClusterName` output names the cluster, or `DROPWARDEN_CLUSTER` as on
 * a host itself): every container instance of the cluster with the `dropwarden.*` attributes its
 * agent publishes (container-host/agent/fleet.ts). Locally: the one host, from the host.json
 * the local agent writes in its directory.
 */
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { type ContainerInstance, DescribeContainerInstancesCommand, ECSClient, paginateListContainerInstances } from '@aws-sdk/client-ecs';
import { Command } from 'commander';
import { OUTPUT } from '../../contracts/stack-outputs.ts';
import { DEFAULT_AGENT_DIR } from '../../container-host/agent/config.ts';
import { readLocalHost } from '../../container-host/agent/fleet.ts';
import { CAPACITY_ATTRIBUTES } from '../../contracts/host-capacity.ts';
import { SETTING } from '../../contracts/settings.ts';
import { readRunningStack, stateDir } from '../../local/state.ts';
import { UsageError } from '../errors.ts';

export interface HostView {
  /** The EC2 instance id on AWS, the hostname locally. */
  host: string;
  ec2_instance_id: string | null;
  container_instance_arn: string | null;
  /** ECS status (ACTIVE, DRAINING, …), or LOCAL. */
  status: string;
  agent_connected: boolean | null;
  running_tasks: number | null;
  availability_zone: string | null;
  instance_type: string | null;
  /** null: no agent publishes this host's capacity. */
  free_memory_mb: number | null;
  free_disk_mb: number | null;
  instances: number | null;
}

export interface HostsView {
  cluster: string | null;
  hosts: HostView[];
}

/** DescribeContainerInstances takes at most 100 container instances a call. */
const DESCRIBE_BATCH = 100;

export function hostsCommand(): Command {
  return new Command('hosts')
    .description('List the container hosts and their free capacity (memory, disk, instances)')
    .option('--json', 'print JSON: {cluster, hosts:[{host, status, running_tasks, free_memory_mb, free_disk_mb, instances, …}]}')
    .option('--stack <name>', "list a deployed stack's hosts (its ECS cluster) instead of the local one")
    .action(async (opts: { json?: boolean; stack?: string }) => {
      const view = await hostsView(opts.stack);
      process.stdout.write(opts.json ? `${JSON.stringify(view)}\n` : formatTable(view));
    });
}

async function hostsView(stackName: string | undefined): Promise<HostsView> {
  if (stackName) {
    const { region, cluster } = await deployedCluster(stackName);
    return { cluster, hosts: await listClusterHosts(new ECSClient({ region }), cluster, region) };
  }
  const cluster = process.env[SETTING.cluster];
  if (cluster) return { cluster, hosts: await listClusterHosts(new ECSClient({}), cluster) };
  return { cluster: null, hosts: [localHost()] };
}

async function deployedCluster(stackName: string): Promise<{ region: string; cluster: string }> {
  const cfn = new CloudFormationClient({});
  const region = await cfn.config.region();
  let outputs;
  try {
    outputs = (await cfn.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks?.[0]?.Outputs;
  } catch (err) {
    if ((err as Error).name === 'ValidationError') throw new UsageError(`no CloudFormation stack named ${stackName} in ${region}`);
    throw err;
  }
  const cluster = outputs?.find((o) => o.OutputKey === OUTPUT.clusterName)?.OutputValue;
  if (!cluster) throw new UsageError(`stack ${stackName} has no output ${OUTPUT.clusterName}: is it a dropwarden stack, deployed from this version?`);
  return { region, cluster };
}

export async function listClusterHosts(client: ECSClient, cluster: string, region?: string): Promise<HostView[]> {
  try {
    const arns: string[] = [];
    for await (const page of paginateListContainerInstances({ client }, { cluster })) arns.push(...(page.containerInstanceArns ?? []));
    const hosts: HostView[] = [];
    for (let i = 0; i < arns.length; i += DESCRIBE_BATCH) {
      const out = await client.send(new DescribeContainerInstancesCommand({ cluster, containerInstances: arns.slice(i, i + DESCRIBE_BATCH) }));
      hosts.push(...(out.containerInstances ?? []).map(clusterHost));
    }
    return hosts.sort((a, b) => a.host.localeCompare(b.host));
  } catch (err) {
    if ((err as Error).name === 'ClusterNotFoundException') {
      throw new UsageError(`no ECS cluster ${cluster}${region ? ` in ${region}` : ''}: check --stack, DROPWARDEN_CLUSTER and AWS_REGION`);
    }
    throw err;
  } finally {
    client.destroy();
  }
}

function clusterHost(ci: ContainerInstance): HostView {
  const attrs = new Map((ci.attributes ?? []).map((a) => [a.name ?? '', a.value]));
  const count = (name: string) => {
    const v = attrs.get(name);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
  };
  return {
    host: ci.ec2InstanceId ?? ci.containerInstanceArn?.split('/').at(-1) ?? '?',
    ec2_instance_id: ci.ec2InstanceId ?? null,
    container_instance_arn: ci.containerInstanceArn ?? null,
    status: ci.status ?? 'UNKNOWN',
    agent_connected: ci.agentConnected ?? null,
    running_tasks: ci.runningTasksCount ?? null,
    availability_zone: attrs.get('ecs.availability-zone') ?? null,
    instance_type: attrs.get('ecs.instance-type') ?? null,
    free_memory_mb: count(CAPACITY_ATTRIBUTES.memoryMb),
    free_disk_mb: count(CAPACITY_ATTRIBUTES.diskMb),
    instances: count(CAPACITY_ATTRIBUTES.instances),
  };
}

/**
 * The agent directories to look in, first match wins: DROPWARDEN_AGENT_DIR; the running `up`
 * stack's `agent_dir` (when its state names one) or `<data_dir>/agent`; the agent's default.
 */
function localAgentDirs(): { dirs: string[]; stackRunning: boolean } {
  const agentDir = process.env[SETTING.agentDir];
  if (agentDir) return { dirs: [agentDir], stackRunning: false };
  const state = readRunningStack(stateDir(process.env));
  const dirs: string[] = [];
  if (state?.agent_dir) dirs.push(state.agent_dir);
  if (state?.data_dir) dirs.push(join(state.data_dir, 'agent'));
  dirs.push(DEFAULT_AGENT_DIR);
  return { dirs, stackRunning: state !== undefined };
}

function localHost(): HostView {
  const { dirs, stackRunning } = localAgentDirs();
  const record = dirs.map(readLocalHost).find((r) => r !== undefined);
  if (!record && !stackRunning && !process.env[SETTING.agentDir]) {
    throw new UsageError('no running dropwarden stack found: start one with `npx dropwarden up`, or pass --stack NAME for a deployed one');
  }
  return {
    host: record?.host ?? 'localhost',
    ec2_instance_id: null,
    container_instance_arn: null,
    status: 'LOCAL',
    agent_connected: null,
    running_tasks: null,
    availability_zone: null,
    instance_type: null,
    free_memory_mb: record?.free_memory_mb ?? null,
    free_disk_mb: record?.free_disk_mb ?? null,
    instances: record?.instances ?? null,
  };
}

function formatTable(view: HostsView): string {
  const dash = (v: string | number | null) => (v === null ? '-' : String(v));
  const header = ['HOST', 'STATUS', 'ZONE', 'TYPE', 'TASKS', 'FREE MEM MB', 'FREE DISK MB', 'INSTANCES'];
  const rows = view.hosts.map((h) => [
    h.host,
    h.agent_connected === false && h.status !== 'LOCAL' ? `${h.status} (ECS agent disconnected)` : h.status,
    dash(h.availability_zone),
    dash(h.instance_type),
    dash(h.running_tasks),
    dash(h.free_memory_mb),
    dash(h.free_disk_mb),
    dash(h.instances),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `${cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd()}\n`;
  const title = view.cluster ? `cluster ${view.cluster}: ${view.hosts.length} host(s)\n` : 'local stack: 1 host\n';
  const silent = view.hosts.filter((h) => h.free_memory_mb === null).length;
  const note = silent ? `${silent} host(s) without published capacity: their dropwarden agent is not running (yet)\n` : '';
  return title + line(header) + rows.map(line).join('') + note;
}
