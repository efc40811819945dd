import type { AddressInfo } from 'node:net';
import type { WardendConfig } from './config.ts';
import { HealthEndpoint } from './health.ts';
import { WardenServer } from './server.ts';
import type { WardenService } from './service.ts';

/** Builds the service wardend serves; the real one is createLinuxWardenService (linux/index.ts). */
export type WardenServiceFactory = (config: WardendConfig) => WardenService | Promise<WardenService>;

export interface RunningWardend {
  server: WardenServer;
  service: WardenService;
  /** Where /healthz answers, or undefined when health is off. */
  health?: AddressInfo;
  close(): Promise<void>;
  /** SIGUSR2: stop accepting, finish (or after drainTimeoutMs drop) connections, snapshot, stop. */
  drain(): Promise<void>;
}

/** Starts wardend: the service, its unix socket, and the health endpoint. */
export async function startWardend(
  config: WardendConfig,
  createService: WardenServiceFactory,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<RunningWardend> {
  const service = await createService(config);
  const server = new WardenServer(service, {
    socketPath: config.socket,
    socketMode: config.socketMode,
    socketGroup: config.socketGroup,
    maxFrameBytes: config.maxFrameBytes,
    maxBufferedBytes: config.maxBufferedBytes,
    idleTimeoutMs: config.idleTimeoutMs,
    log,
  });
  let health: HealthEndpoint | undefined;
  let address: AddressInfo | undefined;
  try {
    await server.listen();
    if (config.health) {
      health = new HealthEndpoint(server, service);
      address = await health.listen(config.health.host, config.health.port);
    }
  } catch (err) {
    // A half-started daemon would keep the service's timers (and the process) alive.
    if (server.listening) await server.close();
    await service.close?.();
    throw err;
  }
  return {
    server,
    service,
    health: address,
    async close() {
      await health?.close();
      await server.close();
      await service.close?.();
    },
    async drain() {
      await health?.close();
      await server.drain(config.drainTimeoutMs);
      // The service's close writes what is left of the snapshot; containers and jobs keep running.
      await service.close?.();
    },
  };
}
