/**
 * standalone: any app with an explicit start command (`properties.meta.command`), run as it
 * is. The runtime (request `runtime`, else guessed from the command) adds its environment:
 * java gets JAVA_OPTS (and JAVA_TOOL_OPTIONS when the command ignores JAVA_OPTS) with a heap
 * sized to the memory quota, python PYTHONUNBUFFERED.
 */
import { makeExecutable } from '../api/files.ts';
import { jvmMemory } from '../api/jvm.ts';
import { type Plugin, PluginError } from '../api/types.ts';

const RUNTIMES = ['java', 'node', 'python', 'ruby', 'php'] as const;
type Runtime = (typeof RUNTIMES)[number];

/** `java17` → java, `node20` → node, `python3` → python; else the command's first word. */
export function standaloneRuntime(requested: string | undefined, command: string): Runtime | undefined {
  const fromName = (s: string) => RUNTIMES.find((r) => s.toLowerCase().startsWith(r));
  if (requested) return fromName(requested);
  const first = /^\s*(?:exec\s+|[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*(\S+)/.exec(command)?.[1] ?? '';
  const base = first.split('/').at(-1) ?? '';
  if (base === 'nodejs') return 'node';
  return fromName(base);
}

export const standalone: Plugin = {
  name: 'standalone',
  version: '1.1.0',
  async detect({ properties }) {
    return properties.meta?.command
      ? { matched: true, reason: `the request gives a start command: ${properties.meta.command}` }
      : { matched: false, reason: 'the request gives no start command (properties.meta.command)' };
  },
  async stage(ctx) {
    const command = ctx.startCommand;
    if (!command) {
      throw new PluginError('standalone apps need a start command: set properties.meta.command (e.g. "python3 app.py") or add a Procfile with a web: line');
    }
    // Standalone apps are run as they are: scripts and binaries alike must be executable.
    await makeExecutable(ctx.dir);
    const requested = ctx.properties.runtime_info?.name ?? ctx.properties.runtime;
    const runtime = standaloneRuntime(requested, command);
    const environment: Record<string, string> = {};
    if (runtime === 'python') environment.PYTHONUNBUFFERED = '1';
    if (runtime === 'java') {
      const jvm = jvmMemory(ctx.memoryMb);
      // Relative to app/, where the command runs: the JVM resolves it once, at start.
      environment.JAVA_OPTS = [...jvm.options, '-Djava.io.tmpdir=../tmp'].join(' ');
      ctx.log(`JAVA_OPTS: ${environment.JAVA_OPTS} (heap ${jvm.heapMb} MB of ${ctx.memoryMb} MB)`);
      if (!command.includes('JAVA_OPTS')) {
        // Every JVM reads JAVA_TOOL_OPTIONS by itself, so the sizing holds for a bare `java -jar`.
        environment.JAVA_TOOL_OPTIONS = environment.JAVA_OPTS;
        ctx.log('The start command does not use $JAVA_OPTS: the same options go in JAVA_TOOL_OPTIONS');
      }
    }
    ctx.log(`Start command: ${command}`);
    return { startCommand: command, runtime: requested ?? runtime, environment };
  },
};
