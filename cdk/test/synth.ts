/**
 * Synthesizes the app the way `cdk synth` does (cdk-nag included: a finding fails the synth)
 * into a temporary directory, for the assertion tests. Each test file calls this once.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Template } from 'aws-cdk-lib/assertions';
import { createApp } from '../lib/app.ts';
import type { DropwardenStack } from '../lib/stack.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const projectRoot = resolve(here, '..', '..');
export const realStagerEntry = join(projectRoot, 'functions', 'stager', 'handler.ts');

export interface Synthesized {
  stack: DropwardenStack;
  template: Template;
  /** The raw template, for the few checks Template's matchers cannot express. */
  json: { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>; Outputs: Record<string, unknown> };
  assemblyDir: string;
}

export function synthesize(options: { bundle?: boolean; context?: Record<string, unknown> } = {}): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), 'dropwarden-cdk-'));
  const context: Record<string, unknown> = { ...cdkJsonContext(), ...options.context };
  // esbuild runs only where a test looks at the bundle; elsewhere the asset is a placeholder.
  if (!options.bundle) context['aws:cdk:bundling-stacks'] = [];
  const { app, stack } = createApp({
    projectRoot,
    outdir,
    context,
    stagerEntry: existsSync(realStagerEntry) ? realStagerEntry : join(here, 'fixtures', 'stager-handler.ts'),
  });
  const assembly = app.synth();
  const json = assembly.getStackByName(stack.stackName).template;
  return { stack, template: Template.fromJSON(json), json, assemblyDir: assembly.directory };
}

/** The context `cdk synth` would see from cdk.json, so tests check the shipped defaults. */
function cdkJsonContext(): Record<string, unknown> {
  return JSON.parse(readFileSync(join(projectRoot, 'cdk.json'), 'utf8')).context ?? {};
}
