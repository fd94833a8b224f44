// How a failure of any kind becomes one of the wire's error codes. Server side only: the SDK never imports it.
import { ConnectionException, LockWaitTimeoutException } from '@mikro-orm/core';
import { ErrorCode, GatewayError } from './errors.ts';

// Node socket errors and pg's own messages when the server is gone or the pool cannot connect in time.
const UNREACHABLE =
  /not currently accepting connections|too many (clients|connections)|remaining connection slots|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|timeout exceeded when trying to connect|Connection terminated|the database system is (starting up|shutting down)|terminating connection|Client has encountered a connection error|Query read timeout/i;

/** True when an error means "the database cannot be reached right now" rather than a bug. */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (err instanceof ConnectionException || err instanceof LockWaitTimeoutException) return true;
  const e = err as { code?: string; message?: string; cause?: unknown } | undefined;
  if (!e) return false;
  // SQLSTATE connection / shutdown classes; 08P01 (protocol violation) is bad input, not an outage.
  // 53xxx: out of resources (too many connections); 55000 / 3D000: the database refuses connections or is gone;
  // 57014: a statement cancelled at statement_timeout (the write bound), as a lock held elsewhere makes it wait.
  if (typeof e.code === 'string' && e.code !== '08P01' && /^(08|57P0[1-3]|57014$|53|55000$|3D000$)/.test(e.code)) return true;
  if (typeof e.message === 'string' && UNREACHABLE.test(e.message)) return true;
  return e.cause !== undefined && e.cause !== err && isDatabaseUnavailable(e.cause);
}

/** Maps any error to the wire vocabulary; the caller logs the original when the result is INTERNAL. */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  if (isDatabaseUnavailable(err)) {
    return new GatewayError(ErrorCode.UNAVAILABLE, 'the database is unavailable; try again shortly', { retryAfterMs: 1000, cause: err });
  }
  return new GatewayError(ErrorCode.INTERNAL, 'internal error', { cause: err });
}
