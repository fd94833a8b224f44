import type { IncomingMessage } from 'node:http';
import type { ClientInfo } from '../chat/send-message.ts';

/** Longest user agent kept: enough to tell browsers and apps apart, and bounded whatever a client sends. */
const USER_AGENT_CHARS = 256;

/** Many tabs share a handful of user agents: sockets keep one shared copy of each, not one string apiece. */
const interned = new Map<string, string>();
const INTERNED_MAX = 1000;

function intern(s: string): string {
  const known = interned.get(s);
  if (known !== undefined) return known;
  if (interned.size >= INTERNED_MAX) interned.delete(interned.keys().next().value!);
  interned.set(s, s);
  return s;
}

/**
 * What is recorded of the client with each of its messages: its user agent always, its address only when the
 * operator opts in (RECORD_CLIENT_ADDRESS), since an address is personal data.
 */
export function clientInfoOf(o: { recordAddress: boolean; address: (req: IncomingMessage) => string }) {
  return (req: IncomingMessage): ClientInfo => {
    const ua = req.headers['user-agent'];
    const info: ClientInfo = {};
    if (typeof ua === 'string' && ua.length > 0) info.userAgent = intern(ua.slice(0, USER_AGENT_CHARS).toWellFormed());
    if (o.recordAddress) info.address = o.address(req);
    return info;
  };
}
