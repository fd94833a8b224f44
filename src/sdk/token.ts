/**
 * The `exp` claim (seconds since the epoch) of a JWT, read without verifying it — the server verifies; the client
 * only needs to know when to refresh. Undefined when the token is not a readable JWT or has no numeric `exp`.
 *
 * @example
 * const exp = jwtExp(token); // e.g. 1767225600
 */
export function jwtExp(token: string): number | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    // atob yields Latin-1: other claims' non-ASCII text comes out garbled, which does not matter for `exp`.
    const exp = (JSON.parse(atob(base64)) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A random UUID v4 from `globalThis.crypto`: `randomUUID` where it exists (secure contexts, Node), else built from
 * `getRandomValues`, which browsers also offer on plain-http pages.
 *
 * @example
 * const clientMessageId = randomId();
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
