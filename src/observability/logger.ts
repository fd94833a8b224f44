import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Tokens and message contents never reach them: handlers log ids and outcomes only,
 * and the paths below are redacted in case a request object is ever logged whole.
 */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino(
    {
      level,
      base,
      redact: {
        paths: ['req.headers.authorization', 'headers.authorization', 'token', '*.token', 'content', '*.content'],
        censor: '[redacted]',
      },
    },
    // Asynchronous writes: with an audit line per message, synchronous writes to stdout block the event loop
    // whenever the disk or the pipe behind it stalls (they took a sixth of a node's CPU under load). What is
    // buffered is flushed at exit.
    pino.destination({ dest: 1, sync: false }),
  );
}

/** One audit line per write: who, what, which ids, and how it ended. */
export function audit(
  log: Logger,
  entry: { userId: string; op: string; outcome: 'ok' | 'duplicate' | 'not_found' | 'error'; [id: string]: unknown },
): void {
  log.info({ audit: entry }, `audit ${entry.op} ${entry.outcome}`);
}
