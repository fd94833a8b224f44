import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Tokens and message contents never reach them: handlers log ids and outcomes only,
 * and the paths below are redacted in case a request object is ever logged whole.
 */
export function createLogger(level: string, base: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base,
      serializers: { err: errorWithoutRowData },
      redact: {
        paths: ['req.headers.authorization', 'headers.authorization', 'token', '*.token', 'content', '*.content'],
        censor: '[redacted]',
      },
    },
    // Asynchronous writes: with an audit line per message, synchronous writes to stdout block the event loop
    // whenever the disk or the pipe behind it stalls (they took a sixth of a node's CPU under load). What is
    // buffered is flushed at exit.
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

// PostgreSQL describes a rejected row in `detail` ("Failing row contains (…)", "Key (…)=(…) already exists"),
// and MikroORM repeats it in the error message. Row values are user data (message text among them), so the
// detail is cut from every logged error; the constraint, table and SQLSTATE still say what went wrong.
const ROW_DETAIL = /( - )?detail: .*$|Failing row contains .*$/gm;

function errorWithoutRowData(err: unknown): unknown {
  const out = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
  if (!out || typeof out !== 'object') return out;
  delete out.detail;
  for (const field of ['message', 'stack'] as const) {
    if (typeof out[field] === 'string') out[field] = (out[field] as string).replace(ROW_DETAIL, '[row detail withheld]');
  }
  return out;
}
