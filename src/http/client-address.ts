import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';

/**
 * The address a request came from. `X-Forwarded-For` is believed only from the proxies the operator trusts
 * (TRUSTED_PROXIES, express's `trust proxy` notation: `loopback`, CIDRs, addresses); anyone else could write
 * any address in it, and dodge a per-address limit by doing so.
 */
export function clientAddressOf(trustedProxies: string[]): (req: IncomingMessage) => string {
  const trust = proxyAddr.compile(trustedProxies);
  return (req) => proxyAddr(req, trust);
}
