import type { IncomingMessage } from 'node:http';

/**
 * Decides whether a handshake's Origin may open a socket. Socket.IO's `cors` option only sets response
 * headers: a foreign page can still open a WebSocket (no preflight), so this check runs in `allowRequest`.
 * - no Origin header: a non-browser client, judged by its token alone;
 * - CORS_ORIGINS set: the Origin must be one of them;
 * - CORS_ORIGINS unset: only pages served by the gateway itself (Origin host = Host header).
 */
export function isOriginAllowed(req: IncomingMessage, allowList: string[] | undefined): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (allowList) return allowList.includes(origin);
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
