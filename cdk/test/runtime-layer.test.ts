import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { allow, arn, logicalId, permissionsOf, synthesize } from './synth.ts';
import type { Synthesized } from './synth.ts';

// A stand-in for what the resources/ scripts build; only its presence matters to the stack.
const layerDir = mkdtempSync(join(tmpdir(), 'dropwarden-layer-'));
mkdirSync(join(layerDir, 'tomcat'));
writeFileSync(join(layerDir, 'tomcat', 'VERSION'), '10.1\n');
const replyTo = 'arn:aws:sqs:eu-west-1:123456789012:upstream-results';

let s: Synthesized;
beforeAll(() => {
  s = synthesize({ context: { 'dropwarden:runtimeLayerDir': layerDir, 'dropwarden:replyToQueueArns': [replyTo] } });
});

describe('with dropwarden:runtimeLayerDir and replyToQueueArns', () => {
  it('ships the runtime bundles as a layer and tells the function where they are', () => {
    const layer = s.stack.stager.runtimeLayer!;
    s.template.hasResourceProperties('AWS::Lambda::LayerVersion', {
      CompatibleRuntimes: ['nodejs22.x'],
      CompatibleArchitectures: ['x86_64'],
    });
    const fn = s.json.Resources[logicalId(s.stack.stager.function)].Properties;
    expect(fn.Layers).toEqual([{ Ref: logicalId(layer) }]);
    expect(fn.Environment.Variables.DROPWARDEN_RUNTIMES_DIR).toBe('/opt');
    expect(fn.Environment.Variables.DROPWARDEN_NPM_CLI).toBe('/opt/npm/bin/npm-cli.js');
  });

  it('gives the builder the same layer and tells it the same', () => {
    const stager = s.json.Resources[logicalId(s.stack.stager.function)].Properties;
    const builder = s.json.Resources[logicalId(s.stack.builder.function)].Properties;
    expect(builder.Layers).toEqual([{ Ref: logicalId(s.stack.stager.runtimeLayer!) }]);
    s.template.resourceCountIs('AWS::Lambda::LayerVersion', 1);
    const runtimes = (v: Record<string, unknown>) => ({ dir: v.DROPWARDEN_RUNTIMES_DIR, npm: v.DROPWARDEN_NPM_CLI });
    expect(runtimes(builder.Environment.Variables)).toEqual({ dir: '/opt', npm: '/opt/npm/bin/npm-cli.js' });
    expect(runtimes(builder.Environment.Variables)).toEqual(runtimes(stager.Environment.Variables));
  });

  it('lets the function answer on the extra reply_to queues, and only send there', () => {
    const lines = permissionsOf(s.json, s.stack.stager.role).filter((l) => l.includes('sqs:SendMessage'));
    expect(lines).toEqual([...allow(['sqs:SendMessage'], [arn(s.stack.queues.results.queue), replyTo])].sort());
  });

  it('refuses a layer directory that is not there', async () => {
    const missing = join(layerDir, 'not-built');
    expect(() => synthesize({ context: { 'dropwarden:runtimeLayerDir': missing } })).toThrow(/resources\/ scripts/);
  });
});
