/** The CDK app entry (`cdk.json`: `node cdk/bin/app.ts`). */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp } from '../lib/app.ts';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
createApp({ projectRoot }).app.synth();
