/**
 * The sample apps `dropwarden up` stages and runs for a first look: one per plugin family,
 * each answering 200 on `/`. A sample runs only where its runtime does: the warden
 * container's base is this host's own /usr, so the host must have the runtime installed
 * (`dropwarden setup`, which `up` runs first, installs them and builds the Tomcat bundle).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLE_FOR, runtimesDir } from '../plugins/java_web/bundle.ts';

export interface SampleApp {
  name: string;
  path: string;
  /** Start command for plugins that cannot detect one. */
  command?: string;
  /** MB, for staging (the java_web plugin sizes the heap from it) and for the instance. */
  memory?: number;
  /** Host files the app's runtime needs (any one of `files`), with the Debian package that brings it. */
  needs: Array<{ files: string[]; pkg: string }>;
}

const dir = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));
// The bundle `up`'s set-up builds: the default place (a DROPWARDEN_RUNTIMES_DIR is for the stager on AWS).
const tomcatBundle = () => join(runtimesDir({}), BUNDLE_FOR.jakarta, 'bin', 'bootstrap.jar');

export const SAMPLE_APPS: SampleApp[] = [
  { name: 'hello-python', path: dir('hello-python'), command: 'python3 app.py', needs: [{ files: ['/usr/bin/python3'], pkg: 'python3' }] },
  { name: 'hello-node', path: dir('hello-node'), needs: [{ files: ['/usr/bin/node'], pkg: 'nodejs' }] },
  {
    name: 'hello-ruby',
    path: dir('hello-ruby'),
    needs: [{ files: ['/usr/bin/ruby'], pkg: 'ruby' }, { files: ['/usr/bin/rackup'], pkg: 'ruby-rack' }],
  },
  { name: 'hello-php', path: dir('hello-php'), needs: [{ files: ['/usr/bin/php'], pkg: 'php-cli' }] },
  { name: 'hello-static', path: dir('hello-static'), needs: [{ files: ['/usr/bin/python3'], pkg: 'python3' }] },
  {
    name: 'hello-java',
    path: dir('hello-java'),
    memory: 512,
    // The stager needs the Tomcat bundle, which set-up builds from the tomcat10 package.
    needs: [{ files: ['/usr/bin/java'], pkg: 'openjdk-17-jdk-headless' }, { files: [tomcatBundle()], pkg: 'tomcat10' }],
  },
];

export interface SampleSelection {
  runnable: SampleApp[];
  skipped: Array<{ app: SampleApp; why: string }>;
}

/** The samples whose runtime this host has, and why the others are left out. */
export function selectSamples(exists: (file: string) => boolean = existsSync): SampleSelection {
  const selection: SampleSelection = { runnable: [], skipped: [] };
  for (const app of SAMPLE_APPS) {
    const missing = app.needs.filter((n) => !n.files.some(exists));
    if (missing.length) {
      selection.skipped.push({ app, why: `needs ${missing.map((n) => n.files.at(-1)).join(', ')} (apt-get install ${[...new Set(missing.map((n) => n.pkg))].join(' ')})` });
    } else {
      selection.runnable.push(app);
    }
  }
  return selection;
}
