/**
 * The live progress line: rewritten in place once a second on a terminal, printed every 5 s otherwise (CI logs).
 * Goes to stderr so stdout keeps only the final table or JSON.
 */
export interface ProgressSnapshot {
  phase: string;
  elapsedS: number;
  sent: number;
  acked: number;
  received: number;
  errors: number;
  pending: number;
  /** Acks in the last full second. */
  rate: number;
  /** The schedule's offered rate now. */
  offered: number;
  /** Free text for phases without counters (connecting, verifying). */
  note?: string;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export function formatProgress(s: ProgressSnapshot): string {
  const head = `[${s.phase.padEnd(9)} ${s.elapsedS.toFixed(1).padStart(6)}s]`;
  if (s.note) return `${head} ${s.note}`;
  return (
    `${head} sent ${fmt(s.sent)}  acked ${fmt(s.acked)}  received ${fmt(s.received)}  errors ${fmt(s.errors)}  ` +
    `in flight ${fmt(s.pending)}  rate ${fmt(s.rate)}/s (offered ${fmt(s.offered)}/s)`
  );
}

export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private lastPrinted = 0;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly snapshot: () => ProgressSnapshot;
  private width = 0;

  constructor(snapshot: () => ProgressSnapshot, stream: NodeJS.WriteStream = process.stderr) {
    this.snapshot = snapshot;
    this.stream = stream;
    this.tty = Boolean(stream.isTTY);
  }

  start(): void {
    this.timer ??= setInterval(() => this.print(false), 1000);
    this.timer.unref();
  }

  /** Prints now (e.g. when the phase changes). */
  print(force = true): void {
    const now = Date.now();
    if (!this.tty && !force && now - this.lastPrinted < 5000) return;
    this.lastPrinted = now;
    const line = formatProgress(this.snapshot());
    if (this.tty) {
      const pad = Math.max(0, this.width - line.length);
      this.width = line.length;
      this.stream.write(`\r${line}${' '.repeat(pad)}`);
    } else this.stream.write(`${line}\n`);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.print(true);
    if (this.tty) this.stream.write('\n');
  }
}
