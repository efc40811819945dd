/**
 * Synthesizes the app the way `cdk synth` does (cdk-nag included: a finding fails the synth)
 * into a temporary directory, for the assertion tests. Each test file calls this once.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Stack } from 'aws-cdk-lib';
import type { CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { createApp } from '../lib/app.ts';
import type { DropwardenStack } from '../lib/stack.ts';

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface CfnResource {
  Type: string;
  Properties: Record<string, any>;
  [key: string]: unknown;
}

export interface Synthesized {
  stack: DropwardenStack;
  template: Template;
  /** The raw template, for the checks Template's matchers cannot express. */
  json: { Resources: Record<string, CfnResource>; Outputs: Record<string, { Value: unknown }> };
  assemblyDir: string;
}

export function synthesize(options: { bundle?: boolean; context?: Record<string, unknown> } = {}): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), 'dropwarden-cdk-'));
  const context: Record<string, unknown> = { ...TEST_CONTEXT, ...cdkJsonContext(), ...options.context };
  // esbuild runs only where a test looks at the bundle; elsewhere the asset is a placeholder.
  if (!options.bundle) context['aws:cdk:bundling-stacks'] = [];
  const { app, stack } = createApp({ projectRoot, outdir, context });
  const assembly = app.synth();
  const json = assembly.getStackByName(stack.stackName).template;
  return { stack, template: Template.fromJSON(json), json, assemblyDir: assembly.directory };
}

/** What every deployment must add to the context (README "Deploy to AWS"). */
export const TEST_DOMAIN = 'apps.example.com';
export const TEST_CONTEXT = { 'dropwarden:domain': TEST_DOMAIN };

/** The context `cdk synth` would see from cdk.json, so tests check the shipped defaults. */
export function cdkJsonContext(): Record<string, unknown> {
  return JSON.parse(readFileSync(join(projectRoot, 'cdk.json'), 'utf8')).context ?? {};
}

/** Where the synthesized stager function's esbuild bundle (the code that would deploy) is. */
export function stagerBundleDir(s: Synthesized): string {
  return bundleDir(s, s.stack.stager.function);
}

/** Where a synthesized function's esbuild bundle is. */
export function bundleDir(s: Synthesized, fn: IConstruct): string {
  const assets = JSON.parse(readFileSync(join(s.assemblyDir, `${s.stack.artifactId}.assets.json`), 'utf8')).files;
  const key = s.json.Resources[logicalId(fn)].Properties.Code.S3Key as string;
  const asset = Object.values<any>(assets).find((a) => key.startsWith(a.source.path.replace(/^asset\./, '')));
  if (!asset) throw new Error(`${fn.node.path} has no file asset: was the app synthesized with bundle: true?`);
  return join(s.assemblyDir, asset.source.path);
}

export function logicalId(construct: IConstruct): string {
  return Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
}

export const arn = (construct: IConstruct) => ({ 'Fn::GetAtt': [logicalId(construct), 'Arn'] });
export const objectsOf = (bucket: IConstruct) => ({ 'Fn::Join': ['', [arn(bucket), '/*']] });

/**
 * Every permission a role has, one `Allow action on resource [if condition]` line each, sorted:
 * compares exactly however CDK merged the statements, and shows any widening in a diff.
 */
export function permissionsOf(json: Synthesized['json'], role: IConstruct): string[] {
  const roleId = logicalId(role);
  const roleResource = json.Resources[roleId];
  const lines: string[] = [];
  const statements: any[] = [];
  for (const policy of roleResource.Properties.Policies ?? []) statements.push(...policy.PolicyDocument.Statement);
  for (const managed of roleResource.Properties.ManagedPolicyArns ?? []) lines.push(`managed ${JSON.stringify(managed)}`);
  for (const resource of Object.values(json.Resources)) {
    if (resource.Type !== 'AWS::IAM::Policy') continue;
    if (!resource.Properties.Roles.some((r: unknown) => JSON.stringify(r) === JSON.stringify({ Ref: roleId }))) continue;
    statements.push(...resource.Properties.PolicyDocument.Statement);
  }
  for (const s of statements) {
    const actions = [s.Action].flat();
    const resources = [s.Resource].flat();
    const condition = s.Condition ? ` if ${JSON.stringify(s.Condition)}` : '';
    for (const action of actions) for (const res of resources) lines.push(`${s.Effect} ${action} on ${JSON.stringify(res)}${condition}`);
  }
  return lines.sort();
}

export function allow(actions: string[], resources: unknown[], condition?: unknown): string[] {
  const suffix = condition ? ` if ${JSON.stringify(condition)}` : '';
  return actions.flatMap((a) => resources.map((r) => `Allow ${a} on ${JSON.stringify(r)}${suffix}`));
}

export function resourcesOfType(json: Synthesized['json'], type: string): Array<[string, CfnResource]> {
  return Object.entries(json.Resources).filter(([, r]) => r.Type === type);
}
