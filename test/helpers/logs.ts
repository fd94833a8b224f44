// A gateway logger whose JSON lines a test can read: for what must reach the log and not the wire (a provider's
// error text, a tool's failure), and for what must never reach the log (tokens).
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observability/logger.ts';
import type { Logger } from '../../src/observability/logger.ts';

export interface CapturedLog {
  log: Logger;
  /** Every line so far, parsed. */
  entries: Record<string, any>[];
  /** Every line so far, as written. */
  lines: string[];
}

export function captureLog(level = 'info'): CapturedLog {
  const lines: string[] = [];
  const entries: Record<string, any>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        lines.push(line);
        entries.push(JSON.parse(line));
      }
      done();
    },
  });
  return { log: createLogger(level, {}, stream), entries, lines };
}
