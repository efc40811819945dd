import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SOCKET_PATH, encodeFrame, encodeRequest } from '../../../container-host/warden/protocol/index.ts';
import {
  ConfigError,
  loadWardendConfig,
  parseWardendConfig,
  resolveGid,
  SocketInUseError,
  startWardend,
  UnknownGroupError,
} from '../../../container-host/warden/server/index.ts';
import { FakeWardenService } from './fake-service.ts';
import { RawSocket } from './raw-socket.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wdd-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('wardend config', () => {
  it('has defaults', () => {
    const c = parseWardendConfig({});
    expect(c.socket).toBe(DEFAULT_SOCKET_PATH);
    expect(c.socketMode).toBe(0o660);
    expect(c.health).toEqual({ host: '127.0.0.1', port: 7790 });
    expect(c.maxBufferedBytes).toBe(4 * 64 * 1024 * 1024);
    expect(c.idleTimeoutMs).toBe(300_000);
    expect(parseWardendConfig({ maxFrameBytes: 1000 }).maxBufferedBytes).toBe(4000);
  });

  it('reads a JSON file, keeps keys meant for the service, and lets --socket override', async () => {
    const file = join(dir, 'wardend.json');
    await writeFile(file, JSON.stringify({ socket: '/a.sock', socketMode: '0600', health: null, depot: '/var/depot' }));
    const c = await loadWardendConfig(file, { socket: '/b.sock' });
    expect(c).toMatchObject({ socket: '/b.sock', socketMode: 0o600, health: null, depot: '/var/depot' });
    expect((await loadWardendConfig(file, { socket: undefined })).socket).toBe('/a.sock');
  });

  it('says which key is wrong', async () => {
    expect(() => parseWardendConfig({ maxFrameBytes: -1 })).toThrow(ConfigError);
    expect(() => parseWardendConfig({ socketMode: '999' })).toThrow(/socketMode/);
    expect(() => parseWardendConfig({ idleTimeoutMs: -1 })).toThrow(/idleTimeoutMs: expected an integer ≥ 0/);
    expect(() => parseWardendConfig({ maxBufferedBytes: 0 })).toThrow(/maxBufferedBytes: expected a positive integer/);
    expect(() => parseWardendConfig({ maxFrameBytes: 1000, maxBufferedBytes: 999 })).toThrow(/maxBufferedBytes: expected at least maxFrameBytes \(1000\)/);
    await expect(loadWardendConfig(join(dir, 'missing.json'))).rejects.toThrow(/cannot read wardend config/);
    await writeFile(join(dir, 'bad.json'), '{');
    await expect(loadWardendConfig(join(dir, 'bad.json'))).rejects.toThrow(/is not JSON/);
  });

  it('resolves a socket group by name or number', async () => {
    const groups = join(dir, 'group');
    await writeFile(groups, 'root:x:0:\nwarden:x:1234:alice\n');
    expect(await resolveGid('warden', groups)).toBe(1234);
    expect(await resolveGid('55', groups)).toBe(55);
    await expect(resolveGid('nobody-here', groups)).rejects.toThrow(UnknownGroupError);
  });
});

describe('startWardend', () => {
  // The factory hands over the wire-only fake; the real daemon passes createLinuxWardenService.
  it('serves the socket and GET /healthz, and shuts down cleanly', async () => {
    const service = new FakeWardenService();
    const config = parseWardendConfig({ socket: join(dir, 'w.sock'), health: { port: 0 } });
    const wardend = await startWardend(
      config,
      () => service,
      () => {},
    );
    try {
      const conn = await RawSocket.open(config.socket);
      conn.write(encodeFrame(encodeRequest('Ping', {})));
      expect(await conn.next()).toMatchObject({ type: 91 });
      const res = await fetch(`http://127.0.0.1:${wardend.health!.port}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok', connections: 1, containers: 0 });
      expect((await fetch(`http://127.0.0.1:${wardend.health!.port}/`)).status).toBe(404);
      conn.destroy();

      // a second daemon on the same socket is refused rather than stealing it
      await expect(
        startWardend(
          { ...config, health: null },
          () => service,
          () => {},
        ),
      ).rejects.toThrow(SocketInUseError);
    } finally {
      await wardend.close();
    }
    // a path that is not a socket is never removed
    await writeFile(join(dir, 'not-a-socket'), '');
    await expect(
      startWardend(
        { ...config, socket: join(dir, 'not-a-socket'), health: null },
        () => service,
        () => {},
      ),
    ).rejects.toThrow(/is not a socket/);
  });

  it('reports 503 when the service does not answer', async () => {
    const service = new FakeWardenService();
    service.list = () => Promise.reject(new Error('depot unreadable'));
    const config = parseWardendConfig({ socket: join(dir, 'w.sock'), health: { port: 0 } });
    const wardend = await startWardend(
      config,
      () => service,
      () => {},
    );
    try {
      const res = await fetch(`http://127.0.0.1:${wardend.health!.port}/healthz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ status: 'down', reason: 'depot unreadable' });
    } finally {
      await wardend.close();
    }
  });
});
