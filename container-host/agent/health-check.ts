/**
 * Is the instance up? `port`: a TCP connection is accepted; `http`: GET path answers 2xx or
 * 3xx; `none`: yes at once. Tried every 250 ms from the host, through the same address and port
 * the outside uses, until it passes or the timeout.
 */
import { connect } from 'node:net';
import type { HealthCheck } from '../../contracts/instances.ts';
import { sleep } from './abort.ts';

const INTERVAL_MS = 250;
const ATTEMPT_TIMEOUT_MS = 2000;

/** The check did not pass in time; `message` is the CRASHED reason. */
export class HealthCheckTimeoutError extends Error {
  override name = 'HealthCheckTimeoutError';
  readonly lastFailure: string;
  constructor(timeoutS: number, lastFailure: string) {
    super(`health check timed out after ${timeoutS} s`);
    this.lastFailure = lastFailure;
  }
}

function tcpConnects(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: ATTEMPT_TIMEOUT_MS });
    const done = (failure?: string) => {
      socket.destroy();
      resolve(failure);
    };
    socket.once('connect', () => done());
    socket.once('timeout', () => done('connect timed out'));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

async function httpAnswers(host: string, port: number, path: string): Promise<string | undefined> {
  try {
    const res = await fetch(`http://${host}:${port}${path}`, { redirect: 'manual', signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS) });
    await res.body?.cancel();
    return res.status >= 200 && res.status < 400 ? undefined : `GET ${path} answered ${res.status}`;
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return e.cause?.code ?? e.message;
  }
}

/** One attempt: undefined when healthy, else why not. */
export function probe(check: HealthCheck, host: string, port: number): Promise<string | undefined> {
  if (check.type === 'none') return Promise.resolve(undefined);
  if (check.type === 'http') return httpAnswers(host, port, check.path);
  return tcpConnects(host, port);
}

/** Resolves once healthy; rejects with HealthCheckTimeoutError, or the signal's reason when aborted. */
export async function waitHealthy(check: HealthCheck, target: { host: string; port: number }, opts: { timeoutS: number; signal: AbortSignal }): Promise<void> {
  const deadline = Date.now() + opts.timeoutS * 1000;
  for (;;) {
    opts.signal.throwIfAborted();
    const failure = await probe(check, target.host, target.port);
    opts.signal.throwIfAborted();
    if (failure === undefined) return;
    if (Date.now() + INTERVAL_MS >= deadline) throw new HealthCheckTimeoutError(opts.timeoutS, failure);
    await sleep(INTERVAL_MS, opts.signal);
  }
}
