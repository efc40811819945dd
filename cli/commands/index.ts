import type { Command } from 'commander';

type Loader = () => Promise<() => Command>;

/**
 * Every subcommand, by name, loaded on demand: a command imports only its own modules (the
 * agent's ECS client, the emulator, the warden backend…), so `dropwarden apps` does not pay for
 * loading `up`. Each module exports a factory that builds its commander Command.
 */
export const commandLoaders: Record<string, Loader> = {
  up: async () => (await import('./up.ts')).upCommand,
  setup: async () => (await import('./setup.ts')).setupCommand,
  stage: async () => (await import('./stage.ts')).stageCommand,
  push: async () => (await import('./push.ts')).pushCommand,
  apps: async () => (await import('./apps.ts')).appsCommand,
  stop: async () => (await import('./stop.ts')).stopCommand,
  logs: async () => (await import('./logs.ts')).logsCommand,
  config: async () => (await import('./config.ts')).configCommand,
  hosts: async () => (await import('./hosts.ts')).hostsCommand,
  warden: async () => (await import('./warden.ts')).wardenCommand,
  wardend: async () => (await import('./wardend.ts')).wardendCommand,
  agent: async () => (await import('./agent.ts')).agentCommand,
  'stager-worker': async () => (await import('./stager-worker.ts')).stagerWorkerCommand,
};

/** The factories of the commands `argv` can run: just the one it names, or all of them (help, errors). */
export async function commandsFor(argv: string[]): Promise<Array<() => Command>> {
  const name = argv[2];
  const one = name !== undefined ? commandLoaders[name] : undefined;
  return Promise.all(one ? [one()] : Object.values(commandLoaders).map((load) => load()));
}
