import { Command } from 'commander';
import { loadWardendConfig, type WardendConfig } from '../../container-host/warden/server/config.ts';
import { startWardend } from '../../container-host/warden/server/daemon.ts';
import type { WardenService } from '../../container-host/warden/server/service.ts';

/** The real service: imported when wardend starts, so other commands do not load the backend. */
async function createLinuxService(config: WardendConfig): Promise<WardenService> {
  const { createLinuxWardenService } = await import('../../container-host/warden/linux/index.ts');
  // The config file is one object: wire keys for wardend, the rest for the Linux backend.
  return createLinuxWardenService(config as Parameters<typeof createLinuxWardenService>[0]);
}

/** `dropwarden wardend [--config FILE] [--socket PATH]` (DESIGN §6): runs until SIGINT/SIGTERM. */
export function wardendCommand(): Command {
  return new Command('wardend')
    .description('Run the warden daemon: the §5 protocol on a unix socket, Linux containers behind it')
    .option('--config <file>', 'JSON config (socket, socketMode, socketGroup, maxFrameBytes, health, backend settings)')
    .option('--socket <path>', 'unix socket to listen on (overrides the config)')
    .action(async (opts: { config?: string; socket?: string }) => {
      const config = await loadWardendConfig(opts.config, { socket: opts.socket });
      const wardend = await startWardend(config, createLinuxService);
      const health = wardend.health ? `; health http://${wardend.health.address}:${wardend.health.port}/healthz` : '';
      process.stdout.write(`wardend ready on ${config.socket}${health}\n`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          process.stderr.write(`wardend: ${signal}, shutting down\n`);
          resolve();
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      await wardend.close();
    });
}
