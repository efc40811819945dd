import type { Command } from 'commander';
import { agentCommand } from './agent.ts';
import { appsCommand } from './apps.ts';
import { configCommand } from './config.ts';
import { hostsCommand } from './hosts.ts';
import { logsCommand } from './logs.ts';
import { pushCommand } from './push.ts';
import { stageCommand } from './stage.ts';
import { stagerWorkerCommand } from './stager-worker.ts';
import { stopCommand } from './stop.ts';
import { upCommand } from './up.ts';
import { wardenCommand } from './warden.ts';
import { wardendCommand } from './wardend.ts';

/** Every subcommand; each module exports a factory that builds its commander Command. */
export const commands: Array<() => Command> = [upCommand, stageCommand, pushCommand, appsCommand, stopCommand, logsCommand, configCommand, stagerWorkerCommand, wardenCommand, wardendCommand, hostsCommand, agentCommand];
