import { Command } from 'commander';
import { sqsClient } from '../../lib/aws/clients.ts';
import { stagerConfigFromEnv } from '../../functions/stager/config.ts';
import { handler } from '../../functions/stager/handler.ts';
import { logger } from '../../functions/stager/telemetry.ts';
import { StagerWorker } from '../../local/stager-worker.ts';
import { resolveStack } from '../stack.ts';
import { stackConfigToEnv } from '../../lib/stack-config.ts';

export function stagerWorkerCommand(): Command {
  return new Command('stager-worker')
    .description('Long-poll the staging queue and run the stager handler, as the Lambda SQS event source would')
    .option('--concurrency <n>', 'batches staged at once', '2')
    .option('--batch-size <n>', 'messages per batch (1-10)', '5')
    .action(async (opts: { concurrency: string; batchSize: string }) => {
      Object.assign(process.env, { ...stackConfigToEnv(resolveStack()), ...process.env });
      const config = stagerConfigFromEnv();
      if (!config.stack.queues.staging) throw new Error('DROPWARDEN_STAGING_QUEUE_URL is not set');
      const worker = new StagerWorker({
        sqs: sqsClient(config.stack),
        queueUrl: config.stack.queues.staging,
        region: config.stack.region,
        handler: (event) => handler(event),
        concurrency: Number(opts.concurrency),
        batchSize: Number(opts.batchSize),
        log: (message, extra) => logger.warn(message, extra ?? {}),
      });
      await worker.start();
      process.stdout.write(`${JSON.stringify({ ready: true, queue: config.stack.queues.staging })}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => void worker.stop().then(resolve);
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });
}
