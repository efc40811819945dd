/** The agent's settings from the environment, and its capacity arithmetic. */
import { describe, expect, it } from 'vitest';
import { Capacity } from '../../container-host/agent/capacity.ts';
import { AgentConfigError, agentConfigFromEnv, DEFAULT_TUNING, detectAdvertiseHost } from '../../container-host/agent/config.ts';

const queues = {
  DROPWARDEN_START_QUEUE_URL: 'http://127.0.0.1:4566/000000000000/start',
  DROPWARDEN_EVENTS_QUEUE_URL: 'http://127.0.0.1:4566/000000000000/events',
  DROPWARDEN_AGENT_DIR: '/tmp',
};

describe('agent settings', () => {
  it('has the README defaults', () => {
    const c = agentConfigFromEnv({ ...queues });
    expect(c).toMatchObject({
      region: 'us-east-1',
      endpoint: undefined,
      wardenSocket: '/var/run/dropwarden/warden.sock',
      api: { host: '127.0.0.1', port: 7791 },
      healthCheckTimeoutS: 60,
      maxRestarts: 5,
      cluster: undefined,
      advertiseHost: detectAdvertiseHost(),
      tuning: DEFAULT_TUNING,
    });
    expect(c.memoryMb).toBeGreaterThan(0);
    expect(c.diskMb).toBeGreaterThanOrEqual(0);
    // wardend arms grace timers with setTimeout: longer than 2^31 ms would fire at once.
    expect(DEFAULT_TUNING.graceTimeS * 1000).toBeLessThan(2 ** 31);
  });

  it('reads every variable', () => {
    const c = agentConfigFromEnv({
      ...queues,
      AWS_REGION: 'eu-west-1',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:4566',
      DROPWARDEN_WARDEN_SOCKET: '/run/w.sock',
      DROPWARDEN_AGENT_API: '0.0.0.0:8000',
      DROPWARDEN_AGENT_ADVERTISE_HOST: '10.1.2.3',
      DROPWARDEN_AGENT_MEMORY_MB: '2048',
      DROPWARDEN_AGENT_DISK_MB: '0',
      DROPWARDEN_HEALTH_CHECK_TIMEOUT_SECONDS: '5',
      DROPWARDEN_MAX_RESTARTS: '0',
      DROPWARDEN_CLUSTER: 'c1',
    });
    expect(c).toMatchObject({
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:4566',
      wardenSocket: '/run/w.sock',
      api: { host: '0.0.0.0', port: 8000 },
      advertiseHost: '10.1.2.3',
      memoryMb: 2048,
      diskMb: 0,
      healthCheckTimeoutS: 5,
      maxRestarts: 0,
      cluster: 'c1',
    });
    expect(agentConfigFromEnv({ ...queues, DROPWARDEN_AGENT_API: 'off' }).api).toBeNull();
  });

  it('names the variable that is wrong', () => {
    expect(() => agentConfigFromEnv({ DROPWARDEN_EVENTS_QUEUE_URL: queues.DROPWARDEN_EVENTS_QUEUE_URL })).toThrow(/DROPWARDEN_START_QUEUE_URL is not set/);
    expect(() => agentConfigFromEnv({ ...queues, DROPWARDEN_EVENTS_QUEUE_URL: 'events' })).toThrow(AgentConfigError);
    expect(() => agentConfigFromEnv({ ...queues, DROPWARDEN_AGENT_API: '7791' })).toThrow(/DROPWARDEN_AGENT_API="7791" is not HOST:PORT/);
    expect(() => agentConfigFromEnv({ ...queues, DROPWARDEN_AGENT_MEMORY_MB: '1.5G' })).toThrow(/DROPWARDEN_AGENT_MEMORY_MB="1.5G" is not a whole number/);
    expect(() => agentConfigFromEnv({ ...queues, DROPWARDEN_HEALTH_CHECK_TIMEOUT_SECONDS: '0' })).toThrow(/≥ 1/);
  });
});

describe('capacity', () => {
  it('holds and releases reservations, and says when the host is full', () => {
    const capacity = new Capacity({ memoryMb: 1024, diskMb: 2048 });
    const changes: number[] = [];
    capacity.onChange(() => changes.push(capacity.free().memoryMb));
    expect(capacity.fits({ memoryMb: 256, diskMb: 512 }, 4)).toBe(true);
    expect(capacity.fits({ memoryMb: 256, diskMb: 512 }, 5)).toBe(false);
    capacity.hold('a', { memoryMb: 1000, diskMb: 100 });
    expect(capacity.free()).toEqual({ memoryMb: 24, diskMb: 1948, instances: 1 });
    expect(capacity.hasRoom()).toBe(true);
    capacity.hold('b', { memoryMb: 16, diskMb: 16 });
    expect(capacity.hasRoom()).toBe(false);
    capacity.release('a');
    capacity.release('a');
    expect(capacity.free()).toEqual({ memoryMb: 1008, diskMb: 2032, instances: 1 });
    expect(changes).toEqual([24, 8, 1008]);
  });
});
