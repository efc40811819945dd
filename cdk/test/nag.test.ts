import { App, Stack } from 'aws-cdk-lib';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp } from '../lib/app.ts';
import { TEST_CONTEXT, cdkJsonContext, projectRoot, synthesize } from './synth.ts';
import type { Synthesized } from './synth.ts';

let s: Synthesized;
beforeAll(() => {
  s = synthesize();
});

function acknowledgements(root: IConstruct): Array<{ path: string; id: string; reason: string }> {
  const found: Array<{ path: string; id: string; reason: string }> = [];
  for (const construct of root.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== 'aws:cdk:acknowledged-rules') continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        found.push({ path: construct.node.path, id, reason });
      }
    }
  }
  return found;
}

describe('cdk-nag (AWS Solutions)', () => {
  it('passes: the AWS Solutions pack finds nothing unacknowledged, errors or warnings', () => {
    const report = new AwsSolutionsChecks().validateScope(s.stack);
    expect(report.violations).toEqual([]);
    expect(report.success).toBe(true);
    // The same check on a stack with one careless bucket does find it: it is not vacuous.
    const careless = new Stack(new App(), 'Careless');
    new Bucket(careless, 'Bucket');
    const found = new AwsSolutionsChecks().validateScope(careless);
    expect(found.success).toBe(false);
    expect(found.violations.map((v) => v.ruleName)).toContain('AwsSolutions-S10');
  });

  it('acknowledges only these findings, each with a one-line reason', () => {
    // aws-cdk-lib acknowledges a few of its own CloudFormation-Validate findings: not ours.
    const acks = acknowledgements(s.stack).filter((a) => a.id.includes('AwsSolutions-'));
    for (const ack of acks) expect(ack.reason, ack.id).toMatch(/^[^\n]{20,200}$/);
    expect(acks.map((a) => `${a.path.replace(/^Dropwarden\//, '')} ${a.id.replace(/^Annotation::/, '').replace(/<[^>]+>/g, '<ref>')}`).sort()).toEqual(
      [
        'Hosts/Hosts AwsSolutions-AS3',
        'Hosts/InstanceRole AwsSolutions-IAM5[Action::ecs:Submit*]',
        'Hosts/InstanceRole AwsSolutions-IAM5[Resource::*]',
        'Hosts/Task AwsSolutions-ECS2',
        'Hosts/Task/ExecutionRole AwsSolutions-IAM5[Resource::*]',
        'Hosts/TaskRole/DefaultPolicy AwsSolutions-IAM5[Resource::*]',
        'Hosts/TaskRole/DefaultPolicy AwsSolutions-IAM5[Resource::arn:<ref>:elasticloadbalancing:<ref>:<ref>:listener-rule/<ref>/*/*]',
        'Hosts/TaskRole/DefaultPolicy AwsSolutions-IAM5[Resource::arn:<ref>:elasticloadbalancing:<ref>:<ref>:targetgroup/dw-*/*]',
        'Routes/SecurityGroup AwsSolutions-EC23',
        'Hosts/TaskRole/DefaultPolicy AwsSolutions-IAM5[Resource::<ref>/*]',
        'Hosts/TaskRole/DefaultPolicy AwsSolutions-IAM5[Resource::arn:<ref>:ecs:<ref>:<ref>:container-instance/<ref>/*]',
        'Hosts/TaskRole/DefaultPolicy AwsSolutions-IAM5[Resource::arn:<ref>:ecs:<ref>:<ref>:task/<ref>/*]',
        'Builder/Function AwsSolutions-L1',
        'Builder/Role/DefaultPolicy AwsSolutions-IAM5[Resource::<ref>]',
        'Builder/DataRole/DefaultPolicy AwsSolutions-IAM5[Resource::<ref>/*]',
        'Builder/DataRole/DefaultPolicy AwsSolutions-IAM5[Resource::<ref>/.builds/*]',
        'Builder/DataRole/DefaultPolicy AwsSolutions-IAM5[Resource::<ref>/.logs/*]',
        'Builder/DataRole/DefaultPolicy AwsSolutions-IAM5[Resource::<ref>/*]',
        'Stager/Function AwsSolutions-L1',
        'Stager/Role/DefaultPolicy AwsSolutions-IAM5[Resource::<ref>/*]',
        'Stager/Role/DefaultPolicy AwsSolutions-IAM5[Resource::<ref>/*]',
        'Stager/Role/DefaultPolicy AwsSolutions-IAM5[Resource::<ref>/*]',
        'Stager/Role/DefaultPolicy AwsSolutions-IAM5[Resource::<ref>/.builds/*]',
        'Stager/Role/DefaultPolicy AwsSolutions-IAM5[Resource::<ref>]',
        'Storage/AccessLogs AwsSolutions-S1',
      ].sort(),
    );
  });

  it('is wired into the app: a careless bucket fails the synth', () => {
    const { app, stack } = createApp({
      projectRoot,
      outdir: mkdtempSync(join(tmpdir(), 'dropwarden-cdk-')),
      context: { ...TEST_CONTEXT, ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] },
    });
    new Bucket(stack, 'Careless');
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => {});
    let failure: unknown;
    try {
      app.synth();
    } catch (err) {
      failure = err;
    } finally {
      quiet.mockRestore();
    }
    expect(String(failure)).toMatch(/ValidationFailed/);
    expect(String(failure)).toMatch(/Dropwarden\/Careless\/Resource/);
    expect(String(failure)).toMatch(/AwsSolutions-S10/);
  });
});
