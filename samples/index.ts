/** The sample apps `dropwarden up` stages (and, with the agent, runs) for a first look. */
import { fileURLToPath } from 'node:url';

export interface SampleApp {
  name: string;
  path: string;
  /** Start command for plugins that cannot detect one yet. */
  command?: string;
}

export const SAMPLE_APPS: SampleApp[] = [
  { name: 'hello-python', path: fileURLToPath(new URL('./hello-python', import.meta.url)), command: 'python3 app.py' },
];
