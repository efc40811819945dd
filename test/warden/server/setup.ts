import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WardenServer, type WardenServerOptions } from '../../../container-host/warden/server/index.ts';
import { FakeWardenService } from './fake-service.ts';

/** A WardenServer on a fresh socket in a temp dir, serving the wire-only FakeWardenService. */
export async function startTestServer(options: Partial<WardenServerOptions> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'wd-'));
  const service = new FakeWardenService();
  const logs: string[] = [];
  const server = new WardenServer(service, {
    socketPath: join(dir, 'warden.sock'),
    log: (l) => logs.push(l),
    ...options,
  });
  await server.listen();
  return {
    dir,
    service,
    server,
    logs,
    socketPath: server.socketPath,
    async stop() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
