import type { Command } from 'commander';
import { configCommand } from './config.ts';
import { hostsCommand } from './hosts.ts';
import { stageCommand } from './stage.ts';
import { stagerWorkerCommand } from './stager-worker.ts';
import { upCommand } from './up.ts';
import { wardenCommand } from './warden.ts';
import { wardendCommand } from './wardend.ts';

/** Every subcommand; each module exports a factory that builds its commander Command. */
export const commands: Array<() => Command> = [upCommand, stageCommand, configCommand, stagerWorkerCommand, wardenCommand, wardendCommand, hostsCommand];
