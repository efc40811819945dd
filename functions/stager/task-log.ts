/**
 * The task_log of a StagingResult: `[YYYY-MM-DD HH:MM:SS] msg` lines (v1's format, UTC),
 * also streamed to a listener (the structured logger, a live tail) as they are written.
 */
export type TaskLogListener = (line: string) => void;

function stamp(d: Date): string {
  return d.toISOString().slice(0, 19).replace('T', ' ');
}

export class TaskLog {
  private readonly lines: string[] = [];
  private readonly plain: string[] = [];
  private bytes = 0;
  private truncated = false;
  private readonly listeners: TaskLogListener[] = [];
  private readonly maxBytes: number;
  /** SQS bodies are capped at 256 KiB; the log gets most of that, the tail is kept. */
  constructor(maxBytes = 192 * 1024) {
    this.maxBytes = maxBytes;
  }

  onLine(listener: TaskLogListener): void {
    this.listeners.push(listener);
  }

  info(message: string, now = new Date()): void {
    this.write(message, now, true);
  }

  /**
   * A line for the live log and the result's task_log only, never the droplet's staging.log:
   * for facts about the stager rather than the app (the build cache's state), which would make
   * two stagings of the same app differ.
   */
  transient(message: string, now = new Date()): void {
    this.write(message, now, false);
  }

  /** Lines another process wrote and rendered (the builder's, on AWS), taken as they are. */
  adopt(rendered: string): void {
    for (const line of rendered.split('\n')) if (line) this.push(line);
    this.trim();
  }

  private write(message: string, now: Date, inDroplet: boolean): void {
    for (const part of message.replace(/\r?\n$/, '').split(/\r?\n/)) {
      if (inDroplet) this.plain.push(part);
      this.push(`[${stamp(now)}] ${part}`);
    }
    this.trim();
  }

  private push(line: string): void {
    this.lines.push(line);
    this.bytes += Buffer.byteLength(line) + 1;
    for (const l of this.listeners) l(line);
  }

  private trim(): void {
    while (this.bytes > this.maxBytes && this.lines.length > 1) {
      this.bytes -= Buffer.byteLength(this.lines.shift()!) + 1;
      this.truncated = true;
    }
  }

  /** The messages without timestamps: what goes into the droplet, so its bytes stay reproducible. */
  messages(): string {
    return this.plain.map((l) => `${l}\n`).join('');
  }

  toString(): string {
    const head = this.truncated ? '[… earlier lines dropped to fit the result message]\n' : '';
    return head + this.lines.map((l) => `${l}\n`).join('');
  }
}
