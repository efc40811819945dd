/**
 * Faults injected into the real @aws-sdk clients: a middleware in the deserialize step (inside
 * the SDK's own retry loop, where a service's error answer surfaces) that, for the calls a rule
 * matches, throws the service exception the SDK itself would build from such an answer. Every
 * call of the client is counted, faulted or not, so a test can tell how often an operation was
 * tried. The clients are fresh instances, never the cached ones of lib/aws/clients.ts.
 */
import { S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { SQSClient, SQSServiceException } from '@aws-sdk/client-sqs';
import type { DeserializeMiddleware, MiddlewareStack } from '@smithy/types';
import type { StackConfig } from '../../lib/stack-config.ts';

export interface Call {
  command: string;
  input: Record<string, any>;
  faulted?: string;
}

export interface FaultRule {
  /** e.g. GetObject, PutObject, UploadPart, SendMessage. */
  command: string;
  /** Which of the command's calls the rule applies to (all of them by default). */
  when?: (input: Record<string, any>) => boolean;
  /** How many matching calls fail before the rule lets them through (Infinity: all). */
  times: number;
  /** The error code (the exception's name) and the HTTP status of the service's answer. */
  name: string;
  status: number;
}

export interface FaultyClients {
  s3: S3Client;
  sqs: SQSClient;
  calls: Call[];
  /** Adds a rule; the earliest matching rule that is not used up answers a call. */
  fail(rule: FaultRule): void;
  /** Calls of `command` (that `when` accepts). */
  callsOf(command: string, when?: (input: Record<string, any>) => boolean): Call[];
  destroy(): void;
}

const emulatorCredentials = { accessKeyId: 'dropwarden', secretAccessKey: 'dropwarden' };

export function faultyClients(config: StackConfig): FaultyClients {
  const calls: Call[] = [];
  const rules: Array<FaultRule & { left: number }> = [];
  const s3 = new S3Client({
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: true,
    credentials: emulatorCredentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const sqs = new SQSClient({ region: config.region, endpoint: config.endpoint, credentials: emulatorCredentials });
  const inject = (client: S3Client | SQSClient, Exception: typeof S3ServiceException | typeof SQSServiceException) => {
    const middleware: DeserializeMiddleware<any, any> = (next, context) => async (args) => {
      const command = String(context.commandName).replace(/Command$/, '');
      const input = args.input as Record<string, any>;
      const call: Call = { command, input };
      calls.push(call);
      const rule = rules.find((r) => r.left > 0 && r.command === command && (r.when?.(input) ?? true));
      if (rule) {
        rule.left--;
        call.faulted = rule.name;
        throw new Exception({
          name: rule.name,
          message: `injected ${rule.name} (HTTP ${rule.status})`,
          $fault: rule.status >= 500 ? 'server' : 'client',
          $metadata: { httpStatusCode: rule.status, requestId: 'injected', attempts: 1, totalRetryDelay: 0 },
        });
      }
      return next(args);
    };
    (client.middlewareStack as MiddlewareStack<any, any>).add(middleware, { step: 'deserialize', name: 'dropwardenTestFaults', priority: 'high' });
  };
  inject(s3, S3ServiceException);
  inject(sqs, SQSServiceException);
  return {
    s3,
    sqs,
    calls,
    fail(rule) {
      rules.push({ ...rule, left: rule.times });
    },
    callsOf(command, when) {
      return calls.filter((c) => c.command === command && (when?.(c.input) ?? true));
    },
    destroy() {
      s3.destroy();
      sqs.destroy();
    },
  };
}
