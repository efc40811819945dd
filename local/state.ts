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

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DROPWARDEN_STATE_DIR || join(homedir(), '.dropwarden');
}

const stateFile = (env?: NodeJS.ProcessEnv) => join(stateDir(env), 'stack.json');

export function writeState(state: LocalStackState): void {
  mkdirSync(stateDir(), { recursive: true });
  const tmp = `${stateFile()}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, stateFile());
}

export function removeState(pid = process.pid): void {
  const current = readState();
  if (current?.pid === pid) rmSync(stateFile(), { force: true });
}

function readState(): LocalStackState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(), 'utf8')) as LocalStackState;
  } catch {
    return undefined;
  }
}

/** The state an `up` that did not stop cleanly (killed) left behind, or undefined. */
export function readStaleStack(): LocalStackState | undefined {
  const state = readState();
  return state && !readRunningStack() ? state : undefined;
}

/** The running local stack, or undefined when none is (a stale file is ignored). */
export function readRunningStack(): LocalStackState | undefined {
  const state = readState();
  return state && alive(state.pid) ? state : undefined;
}
