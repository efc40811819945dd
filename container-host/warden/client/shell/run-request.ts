import type { WardenClient } from '../client.ts';
import type { StreamRequest } from '../../protocol/types.ts';
import { formatResponse, toJson } from './format.ts';
import type { ParsedRequest } from './request-args.ts';

export interface Output {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  json: boolean;
}

/**
 * Sends one request and prints its answer. Stream prints output live (stdout data to stdout,
 * stderr data to stderr, raw bytes) and then the exit status; with json, one JSON line per answer.
 */
export async function runRequest(client: WardenClient, { name, request }: ParsedRequest, out: Output): Promise<void> {
  if (name === 'Stream') {
    for await (const r of client.stream(request as unknown as StreamRequest)) {
      if (out.json) out.stdout.write(`${toJson(r)}\n`);
      else if (r.data) (r.name === 'stderr' ? out.stderr : out.stdout).write(r.data);
      if (r.exit_status !== undefined && !out.json) out.stderr.write(`exit_status : ${r.exit_status}\n`);
    }
    return;
  }
  const response = await client.call(name, request as never);
  out.stdout.write(`${out.json ? toJson(response) : formatResponse(response as Record<string, unknown>)}\n`);
}
