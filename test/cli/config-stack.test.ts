/**
 * `dropwarden config --stack NAME` (README "Send a staging request"): a deployed stack's
 * CloudFormation outputs, read through the real @aws-sdk/client-cloudformation from a stand-in
 * control plane (a local HTTP server speaking CloudFormation's query protocol, as
 * test/agent/fleet.test.ts stands in for ECS). A stack that does not exist, or one that is not
 * a dropwarden stack, is a usage error (exit 2) with a message, never a stack trace.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STACK_OUTPUTS } from '../../cli/stack-outputs.ts';
import { runCli } from '../support/cli.ts';

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const queue = (name: string) => `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/Dropwarden-${name}`;
const OUTPUTS: Record<string, string> = {
  [STACK_OUTPUTS.staging]: queue('Staging'),
  [STACK_OUTPUTS.staging_dlq]: queue('StagingDlq'),
  [STACK_OUTPUTS.results]: queue('Results'),
  [STACK_OUTPUTS.start]: queue('Start'),
  [STACK_OUTPUTS.events]: queue('Events'),
  [STACK_OUTPUTS.apps]: 'dropwarden-apps-abc',
  [STACK_OUTPUTS.droplets]: 'dropwarden-droplets-abc',
  [STACK_OUTPUTS.cache]: 'dropwarden-cache-abc',
  [STACK_OUTPUTS.routes]: 'https://{app}.apps.example.com',
};
/** The stacks the stand-in knows, by name: their outputs. */
const STACKS: Record<string, Record<string, string>> = {
  Dropwarden: { ...OUTPUTS, SomethingElse: 'ignored' },
  NotOurs: { BucketName: 'x' },
};
const XMLNS = 'http://cloudformation.amazonaws.com/doc/2010-05-15/';
const esc = (s: string) => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;');

let server: Server;
let endpoint = '';
const calls: Array<Record<string, string>> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      const form = Object.fromEntries(new URLSearchParams(text));
      calls.push(form);
      const name = form.StackName;
      const outputs = STACKS[name];
      res.setHeader('content-type', 'text/xml');
      if (form.Action !== 'DescribeStacks' || !outputs) {
        // What CloudFormation answers for a stack it does not have.
        res
          .writeHead(400)
          .end(
            `<ErrorResponse xmlns="${XMLNS}"><Error><Type>Sender</Type><Code>ValidationError</Code>` +
              `<Message>Stack with id ${esc(name ?? '')} does not exist</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`,
          );
        return;
      }
      const members = Object.entries(outputs)
        .map(([k, v]) => `<member><OutputKey>${esc(k)}</OutputKey><OutputValue>${esc(v)}</OutputValue></member>`)
        .join('');
      res
        .writeHead(200)
        .end(
          `<DescribeStacksResponse xmlns="${XMLNS}"><DescribeStacksResult><Stacks><member>` +
            `<StackName>${esc(name)}</StackName><StackId>arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/${esc(name)}/1</StackId>` +
            `<CreationTime>2024-01-01T00:00:00Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus>` +
            `<Outputs>${members}</Outputs></member></Stacks></DescribeStacksResult>` +
            `<ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata></DescribeStacksResponse>`,
        );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => {
  server?.close();
});

const env = () => ({
  AWS_ENDPOINT_URL_CLOUDFORMATION: endpoint,
  AWS_REGION: REGION,
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  // Nothing of a local stack may leak in: --stack reads CloudFormation only.
  DROPWARDEN_STATE_DIR: '/nonexistent-dropwarden-state',
});

describe('dropwarden config --stack', () => {
  it("--json: the queue URLs and bucket names from the stack's outputs, no endpoint", async () => {
    const run = await runCli(['config', '--stack', 'Dropwarden', '--json'], env());
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      region: REGION,
      endpoint: null,
      queues: { staging: queue('Staging'), staging_dlq: queue('StagingDlq'), results: queue('Results'), start: queue('Start'), events: queue('Events') },
      buckets: { apps: 'dropwarden-apps-abc', droplets: 'dropwarden-droplets-abc', cache: 'dropwarden-cache-abc' },
      routes: 'https://{app}.apps.example.com',
    });
    expect(calls.at(-1)).toMatchObject({ Action: 'DescribeStacks', StackName: 'Dropwarden' });
  });

  it('prints a table for people', async () => {
    const run = await runCli(['config', '--stack', 'Dropwarden'], env());
    expect(run.code).toBe(0);
    const rows = Object.fromEntries(
      run.stdout
        .trimEnd()
        .split('\n')
        .map((l) => l.split(/\s{2,}/)),
    );
    expect(rows).toMatchObject({
      region: REGION,
      endpoint: '(AWS)',
      'queue staging': queue('Staging'),
      'bucket droplets': 'dropwarden-droplets-abc',
      routes: 'https://{app}.apps.example.com',
    });
  });

  it('a stack deployed before routes: routes is null', async () => {
    const { [STACK_OUTPUTS.routes]: _, ...older } = OUTPUTS;
    STACKS.Older = older;
    const run = await runCli(['config', '--stack', 'Older', '--json'], env());
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).routes).toBeNull();
  });

  it('a stack that does not exist: exit 2, naming the stack and the region, no stack trace', async () => {
    const run = await runCli(['config', '--stack', 'Nope', '--json'], env());
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`dropwarden: no CloudFormation stack named Nope in ${REGION}\n`);
    expect(run.code).toBe(2);
  });

  it("a stack without dropwarden's outputs: exit 2, naming the missing output", async () => {
    const run = await runCli(['config', '--stack', 'NotOurs'], env());
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`dropwarden: stack NotOurs has no output ${STACK_OUTPUTS.staging}: is it a dropwarden stack, deployed from this version?\n`);
  });
});
