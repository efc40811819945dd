import type { Command } from 'commander';

/** Every subcommand; each module exports a factory that builds its commander Command. */
export const commands: Array<() => Command> = [];
