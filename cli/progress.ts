/** Progress for a person at a terminal: bars on stderr when it is a TTY, silence otherwise. */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total?: number): void;
  stop(): void;
}

const mib = (n: number) => (n / 1048576).toFixed(1);

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label.padEnd(22)} {bar} {percentage}% | {doneMiB}/{totalMiB} MiB`,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      const t = total ?? Math.max(done, 1);
      if (!started) {
        bar.start(t, done, { doneMiB: mib(done), totalMiB: total ? mib(total) : '?' });
        started = true;
      }
      bar.setTotal(t);
      bar.update(done, { doneMiB: mib(done), totalMiB: total ? mib(total) : '?' });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
