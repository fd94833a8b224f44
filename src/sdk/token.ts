/**
 * The claims of a JWT, read without verifying them: the server verifies, the client only needs a few of them
 * (when to refresh, whose token it is). Undefined when the token is not a readable JWT.
 */
function jwtClaims(token: string): Record<string, unknown> | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const base64 = part
      .replace(/-/g, '+')
      .replace(/_/g, '/')
      .padEnd(Math.ceil(part.length / 4) * 4, '=');
    // atob yields one character per byte: decode them as UTF-8, or a non-ASCII `sub` would come out garbled.
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The `exp` claim (seconds since the epoch) of a JWT, read without verifying it — the server verifies; the client
 * only needs to know when to refresh. Undefined when the token is not a readable JWT or has no numeric `exp`.
 *
 * @example
 * const exp = jwtExp(token); // e.g. 1767225600
 */
export function jwtExp(token: string): number | undefined {
  const exp = jwtClaims(token)?.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
}

/**
 * The `sub` claim (the user id) of a JWT, read without verifying it — the server verifies. Enough to keep one
 * user's local preferences apart from another's, or to tell a renewed token of the same user from another user's;
 * never a proof of identity. Undefined when the token is not a readable JWT or has no string `sub`.
 *
 * @example
 * import { jwtSub } from './sdk/index.ts';
 * if (jwtSub(newToken) === jwtSub(oldToken)) await chat.refreshToken(newToken); // same user: keep the socket
 * else chat.close(); // another user: start a new client
 */
export function jwtSub(token: string): string | undefined {
  const sub = jwtClaims(token)?.sub;
  return typeof sub === 'string' ? sub : undefined;
}

/**
 * A random UUID v4 from `globalThis.crypto`: `randomUUID` where it exists (secure contexts, Node), else built from
 * `getRandomValues`, which browsers also offer on plain-http pages. Useful as a `clientMessageId` that the UI knows
 * before the send is acknowledged, to recognise its own message when the broadcast arrives first.
 *
 * @example
 * import { randomId } from './sdk/index.ts';
 * const clientMessageId = randomId();
 * pendingHere.add(clientMessageId);
 * await chat.send({ conversationId, content, clientMessageId });
 */
export function randomId(): string {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === 'function') return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The query parameter that carries {@link affinityKey} in the connection URL (`/socket.io/?affinity=…`). */
export const AFFINITY_PARAM = 'affinity';

/**
 * A short routing key for a user id: 8 hex digits of its FNV-1a hash (over its UTF-8 bytes). The SDK adds it to
 * the connection URL as `?affinity=…` so that a load balancer hashing on it (deploy/nginx: `hash $arg_affinity
 * consistent`) sends every tab of one user to one node, where their broadcasts stay local. It names a bucket, not a
 * user: many users share a key, and the token never appears in the URL. It is not a secret either (anyone who knows
 * a user id can compute it); turn it off with the client's `userAffinity: false`.
 *
 * @example
 * import { affinityKey } from './sdk/index.ts';
 * const url = `wss://chat.example.com/socket.io/?EIO=4&transport=websocket&affinity=${affinityKey('user-42')}`;
 */
export function affinityKey(sub: string): string {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(sub)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, '0');
}
