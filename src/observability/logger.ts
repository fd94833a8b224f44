import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Tokens and message contents never reach them: handlers log ids and outcomes only,
 * and the paths below are redacted in case a request object is ever logged whole.
 */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base,
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'token', '*.token', 'content', '*.content'],
      censor: '[redacted]',
    },
  });
}

/** One audit line per write: who, what, which ids, and how it ended. */
export function audit(
  log: Logger,
  entry: { userId: string; op: string; outcome: 'ok' | 'duplicate' | 'not_found' | 'error'; [id: string]: unknown },
): void {
  log.info({ audit: entry }, `audit ${entry.op} ${entry.outcome}`);
}
