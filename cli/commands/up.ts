import { Command } from 'commander';
import { LocalStack } from '../../local/up.ts';
import { SAMPLE_APPS } from '../../samples/index.ts';
import { runStage } from './stage.ts';

export function upCommand(): Command {
  return new Command('up')
    .description('Run the embedded stack in the foreground (emulator, stager worker); Ctrl-C stops it')
    .option('--no-demo', 'do not stage the sample apps')
    .option('--port <n>', 'emulator port (taken if free, else any)', '4566')
    .option('--data-dir <dir>', 'where S3 objects and staging workspaces live (default ~/.dropwarden/data)')
    .action(async (opts: { demo: boolean; port: string; dataDir?: string }) => {
      const stack = new LocalStack({ port: Number(opts.port), dataDir: opts.dataDir });
      let stopping = false;
      const stop = async (code: number) => {
        if (stopping) return;
        stopping = true;
        process.stderr.write('Stopping the stack…\n');
        await stack.stop();
        process.exit(code);
      };
      process.once('SIGINT', () => void stop(0));
      process.once('SIGTERM', () => void stop(0));
      stack.onPartExit = (part, code) => {
        process.stderr.write(`dropwarden: the ${part} exited unexpectedly (status ${code}); stopping\n`);
        void stop(1);
      };
      const config = await stack.start().catch(async (err) => {
        await stack.stop();
        throw err;
      });
      process.stdout.write(`dropwarden ready: S3+SQS at ${config.endpoint} (names: npx dropwarden config --json)\n`);
      if (opts.demo) {
        for (const app of SAMPLE_APPS) {
          process.stdout.write(`Staging sample app ${app.name}…\n`);
          const result = await runStage(app.path, { command: app.command, env: [], appId: app.name });
          process.stdout.write(
            result.error ? `  ${app.name}: staging failed\n` : `  ${app.name}: droplet ${result.droplet!.uri}\n`,
          );
        }
        process.stdout.write('Sample apps staged. Ctrl-C stops the stack.\n');
      }
      await new Promise(() => {});
    });
}
