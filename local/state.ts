/**
 * The state file a running `dropwarden up` writes, so other commands (and scripts) find the
 * local stack by themselves: its pid, its endpoints and names.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { StackConfig } from '../lib/stack-config.ts';
import { alive } from './pids.ts';

export interface LocalStackState {
  pid: number;
  started_at: string;
  data_dir: string;
  config: StackConfig;
  /** wardend's socket (`dropwarden warden` talks to it by default). */
  warden_socket?: string;
  /** host:port of the agent's HTTP API (`apps`, `logs`, `stop`, `push` read it). */
  agent_api?: string;
  /** The agent's droplet cache and records. */
  agent_dir?: string;
  /** host:port of the router's admin API (DESIGN §7). */
  router_admin?: string;
  /** pid of each part, so a next `up` can stop what one that was killed left running. */
  parts?: Record<string, number>;
}

/** `$DROPWARDEN_STATE_DIR`, else `~/.dropwarden`: what every other function here is given. */
export function stateDir(env: NodeJS.ProcessEnv): string {
  return env.DROPWARDEN_STATE_DIR || join(homedir(), '.dropwarden');
}

const stateFile = (dir: string) => join(dir, 'stack.json');

export function writeState(dir: string, state: LocalStackState): void {
  mkdirSync(dir, { recursive: true });
  const tmp = `${stateFile(dir)}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, stateFile(dir));
}

export function removeState(dir: string, pid = process.pid): void {
  const current = readState(dir);
  if (current?.pid === pid) rmSync(stateFile(dir), { force: true });
}

function readState(dir: string): LocalStackState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(dir), 'utf8')) as LocalStackState;
  } catch {
    return undefined;
  }
}

/** The state an `up` that did not stop cleanly (killed) left behind, or undefined. */
export function readStaleStack(dir: string): LocalStackState | undefined {
  const state = readState(dir);
  return state && !readRunningStack(dir) ? state : undefined;
}

/** The running local stack, or undefined when none is (a stale file is ignored). */
export function readRunningStack(dir: string): LocalStackState | undefined {
  const state = readState(dir);
  return state && alive(state.pid) ? state : undefined;
}
