import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../lib/config.ts';

const configOf = (context: Record<string, unknown>) => readConfig(new App({ context: { 'dropwarden:domain': 'apps.example.com', ...context } }).node);

describe('readConfig', () => {
  it('has defaults sized for staging and a small fleet', () => {
    const config = configOf({});
    expect(config.stackName).toBe('Dropwarden');
    expect(config.stager).toEqual({
      memoryMb: 3584,
      ephemeralStorageMb: 10240,
      timeoutSeconds: 900,
      maxConcurrency: 10,
      batchSize: 1,
      maxReceiveCount: 5,
      runtimeLayerDir: undefined,
      replyToQueueArns: [],
    });
    expect(config.hosts).toMatchObject({ instanceType: 't3.large', minHosts: 1, maxHosts: 2, natGateways: 1 });
  });

  it('takes `-c` strings as numbers and lists', () => {
    const config = configOf({
      'dropwarden:stagerMemoryMb': '2048',
      'dropwarden:replyToQueueArns': 'arn:aws:sqs:eu-west-1:1:a, arn:aws:sqs:eu-west-1:1:b',
      'dropwarden:minHosts': '3',
    });
    expect(config.stager.memoryMb).toBe(2048);
    expect(config.stager.replyToQueueArns).toEqual(['arn:aws:sqs:eu-west-1:1:a', 'arn:aws:sqs:eu-west-1:1:b']);
    expect(config.hosts.maxHosts).toBe(3);
  });

  it.each([
    ['dropwarden:stagerTimeoutSeconds', 901],
    ['dropwarden:stagerMaxConcurrency', 1],
    ['dropwarden:stagingMaxReceiveCount', 4],
    ['dropwarden:stagerMemoryMb', 'lots'],
  ])('refuses %s = %s, naming the key', (key, value) => {
    expect(() => configOf({ [key]: value })).toThrow(key);
  });
});
