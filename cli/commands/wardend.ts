import { Command } from 'commander';
import { loadWardendConfig, type WardendConfig } from '../../container-host/warden/server/config.ts';
import { startWardend } from '../../container-host/warden/server/daemon.ts';
import type { WardenService } from '../../container-host/warden/server/service.ts';
import { EXIT_OK } from '../errors.ts';

/** The real service: imported when wardend starts, so other commands do not load the backend. */
async function createLinuxService(config: WardendConfig): Promise<WardenService> {
  const { createLinuxWardenService } = await import('../../container-host/warden/linux/index.ts');
  // The config file is one object: wire keys for wardend, the rest for the Linux backend.
  return createLinuxWardenService(config as Parameters<typeof createLinuxWardenService>[0]);
}

/**
 * `dropwarden wardend [--config FILE] [--socket PATH]` (DESIGN §6): runs until SIGINT/SIGTERM
 * (drop connections, stop) or SIGUSR2 (drain: stop accepting, answer what was read, snapshot,
 * exit). Either way containers and jobs keep running; the next wardend restores them.
 */
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
      const how = await new Promise<'close' | 'drain'>((resolve) => {
        const stop = (signal: string, how: 'close' | 'drain') => {
          process.stderr.write(`wardend: ${signal}, ${how === 'drain' ? 'draining' : 'shutting down'}\n`);
          resolve(how);
        };
        process.once('SIGINT', () => stop('SIGINT', 'close'));
        process.once('SIGTERM', () => stop('SIGTERM', 'close'));
        process.once('SIGUSR2', () => stop('SIGUSR2', 'drain'));
      });
      await (how === 'drain' ? wardend.drain() : wardend.close());
      process.stderr.write('wardend: stopped\n');
      // Job supervisors are children of ours that outlive us by design: do not wait for them.
      process.exit(process.exitCode ?? EXIT_OK);
    });
}
