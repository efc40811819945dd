import { Command } from 'commander';
import { sqsClient } from '../../lib/aws/clients.ts';
import { stagerConfigFromEnv } from '../../functions/stager/config.ts';
import { createHandler, depsFromConfig } from '../../functions/stager/handler.ts';
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
      // The local stager's composition root: the running stack names the queues and buckets
      // unless the environment does; the settings are read here, once.
      const config = stagerConfigFromEnv({ ...stackConfigToEnv(resolveStack(process.env)), ...process.env });
      if (!config.stack.queues.staging) throw new Error('DROPWARDEN_STAGING_QUEUE_URL is not set');
      const worker = new StagerWorker({
        sqs: sqsClient(config.stack),
        queueUrl: config.stack.queues.staging,
        region: config.stack.region,
        handler: createHandler(() => depsFromConfig(config)),
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
