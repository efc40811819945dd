/**
 * The emulator as a process of its own (so the stager's memory is measured alone):
 * `node local/run-emulator.ts --port N --s3-dir DIR [--region R]`; prints one JSON line
 * `{"endpoint": "..."}` once it listens, and stops on SIGTERM/SIGINT.
 */
import { parseArgs } from 'node:util';
import { startEmulator } from './emulator.ts';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '4566' }, 's3-dir': { type: 'string' }, region: { type: 'string', default: 'us-east-1' } },
});
if (!values['s3-dir']) {
  process.stderr.write('usage: run-emulator.ts --s3-dir DIR [--port N] [--region R]\n');
  process.exit(2);
}
let emulator;
try {
  emulator = await startEmulator({ port: Number(values.port), region: values.region!, s3StorageDir: values['s3-dir'] });
} catch (err) {
  if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
  emulator = await startEmulator({ port: 0, region: values.region!, s3StorageDir: values['s3-dir'] });
}
process.stdout.write(`${JSON.stringify({ endpoint: emulator.endpoint })}\n`);
const stop = () => void emulator.stop().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
