import type { ErrorRequestHandler, RequestHandler } from 'express';
import { reportFailure } from '../observability/failures.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { ErrorCode, GatewayError, type ErrorCode as Code } from '../shared/errors.ts';

export const HTTP_STATUS: Record<Code, number> = {
  VALIDATION: 400,
  UNAUTHORIZED: 401,
  TOKEN_EXPIRED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  TOO_MANY_CONNECTIONS: 429,
  // Handshake only, like TOO_MANY_CONNECTIONS: REST routes never answer it.
  UNSUPPORTED_PROTOCOL: 400,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
};

/** The one place where errors become HTTP responses: `{ error: { code, message } }`. */
export function errorHandler(log: Logger, metrics: Metrics): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const error = requestError(err) ?? reportFailure(err, { log, metrics }, { method: req.method, path: req.path }, 'request failed');
    if (error.retryAfterMs !== undefined) res.setHeader('Retry-After', Math.ceil(error.retryAfterMs / 1000));
    res.status(HTTP_STATUS[error.code]).json({ error: error.toWire() });
  };
}

/** What express itself refuses: a path it cannot decode (`%ZZ`), malformed JSON, bodies over the limit. */
function requestError(err: unknown): GatewayError | undefined {
  const e = err as { type?: string; status?: number };
  if (err instanceof URIError || (e?.status === 400 && !e.type))
    return new GatewayError(ErrorCode.VALIDATION, 'the request path is malformed');
  if (e?.type === 'entity.too.large') return new GatewayError(ErrorCode.PAYLOAD_TOO_LARGE, 'request body too large');
  if (e?.type === 'entity.parse.failed') return new GatewayError(ErrorCode.VALIDATION, 'request body is not valid JSON');
  if (e?.type && e.status && e.status >= 400 && e.status < 500)
    return new GatewayError(ErrorCode.VALIDATION, 'request body could not be read');
  return undefined;
}

export const notFoundRoute: RequestHandler = (_req, res) => {
  res.status(404).json({ error: { code: ErrorCode.NOT_FOUND, message: 'no such route' } });
};
