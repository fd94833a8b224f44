import { DriverException } from '@mikro-orm/core';
import { ErrorCode, type GatewayError } from '../shared/errors.ts';
import { isDatabaseUnavailable, toGatewayError } from '../shared/failures.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

function dbErrorKind(err: unknown): string | undefined {
  if (isDatabaseUnavailable(err)) return 'unavailable';
  if (err instanceof DriverException) return 'driver';
  return undefined;
}

/**
 * The one place a failure of either door (socket ack, REST response) becomes a wire error: database failures
 * are counted, and what is not the client's doing (INTERNAL, UNAVAILABLE) is logged with its context.
 */
export function reportFailure(
  err: unknown,
  d: { log: Logger; metrics: Metrics },
  context: Record<string, unknown>,
  message: string,
): GatewayError {
  const error = toGatewayError(err);
  const kind = dbErrorKind(err);
  if (kind) d.metrics.dbErrors.inc({ kind });
  if (error.code === ErrorCode.INTERNAL || error.code === ErrorCode.UNAVAILABLE) d.log.error({ err, ...context }, message);
  return error;
}
