import cors from 'cors';
import type { RequestHandler } from 'express';
import { ErrorCode, GatewayError } from '../shared/errors.ts';

/** How long a browser may reuse a preflight's answer, in seconds (Chromium caps it at two hours). */
const PREFLIGHT_MAX_AGE_S = 600;

/**
 * CORS for `/api`, for the page origins of CORS_ORIGINS. Every call carries `Authorization`, so a browser sends
 * a preflight first, without the token: it is answered here, before authentication (204 with the headers), or the
 * browser never sends the call. An origin not listed gets no `Access-Control-*` header at all, and its preflight
 * 403: the browser then refuses the call, and the page reads nothing (with CORS_ORIGINS unset, every origin but
 * the gateway's own pages, which need no CORS). The token is a header the page sets, not a cookie: no
 * `Access-Control-Allow-Credentials`, so a call made with `credentials: 'include'` is refused, and cookies of the
 * gateway's site never ride along. Answers to listed origins carry the error statuses too (401, 413, 429 …), with
 * `Retry-After` exposed, so that a page can act on them.
 *
 * This is about browsers reading answers; it is not access control (a token is). The socket handshake has its own
 * Origin check (realtime/origin.ts).
 */
export function apiCors(origins: readonly string[] | undefined): RequestHandler {
  const listed = new Set(origins);
  const withHeaders = cors({
    // Only listed origins reach it (below): the answer names the one that asked.
    origin: true,
    methods: ['GET', 'POST', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key'],
    exposedHeaders: ['Retry-After'],
    credentials: false,
    maxAge: PREFLIGHT_MAX_AGE_S,
  });
  return (req, res, next) => {
    const origin = req.headers.origin;
    // The answer depends on the Origin: a cache must not give one origin's answer to another.
    if (listed.size > 0) res.vary('Origin');
    if (origin !== undefined && listed.has(origin)) return withHeaders(req, res, next);
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      return next(new GatewayError(ErrorCode.FORBIDDEN, 'this page origin may not call the API (CORS_ORIGINS)'));
    }
    next();
  };
}
