// An identity provider's key endpoint, as small as it gets: a node:http server on a loopback port serving a JWKS
// made from keys generated here, counting the requests it receives, and able to go down (connection refused) or
// answer errors. Tokens are signed with the same keys through jose, as a provider would.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, type JWK } from 'jose';

export type SigningAlg = 'RS256' | 'ES256' | 'EdDSA';

export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public key as the JWKS lists it (kid, alg, use). */
  jwk: JWK;
}

export interface TokenClaims {
  /** Default `jwks-user`; `null` for none. */
  sub?: string | null;
  /** Seconds from now (default 600); negative for an expired token. */
  expiresInS?: number;
  iss?: string;
  aud?: string;
  /** The kid put in the header: the key's own by default, `null` for none. */
  kid?: string | null;
  extra?: Record<string, unknown>;
}

/** A new key pair for `alg`, named `kid`. */
export function signingKey(alg: SigningAlg, kid: string): SigningKey {
  const { privateKey, publicKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : alg === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  return { kid, alg, privateKey, publicKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' } };
}

/** A token signed with `key`, carrying its kid unless told otherwise. */
export function signWith(key: SigningKey, claims: TokenClaims = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const body: Record<string, unknown> = { ...claims.extra };
  if (claims.sub !== null) body.sub = claims.sub ?? 'jwks-user';
  if (claims.iss) body.iss = claims.iss;
  if (claims.aud) body.aud = claims.aud;
  const kid = claims.kid === undefined ? key.kid : claims.kid;
  return new SignJWT(body)
    .setProtectedHeader(kid === null ? { alg: key.alg } : { alg: key.alg, kid })
    .setIssuedAt(now)
    .setExpirationTime(now + (claims.expiresInS ?? 600))
    .sign(key.privateKey);
}

export interface JwksServer {
  /** `http://127.0.0.1:<port>/.well-known/jwks.json` */
  url: string;
  /** Requests received so far, of any outcome. */
  readonly requests: number;
  /** What the endpoint serves from now on: these keys' public halves, or any body at all. */
  serve(keys: SigningKey[] | { raw: string; status?: number; headers?: Record<string, string> }): void;
  /** Stops listening: fetches meet a refused connection, as with a provider that is down. */
  stop(): Promise<void>;
  /** Listens again, on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startJwksServer(keys: SigningKey[] = []): Promise<JwksServer> {
  let body = { status: 200, text: '', headers: {} as Record<string, string> };
  let requests = 0;
  let server: Server | undefined;
  let port = 0;
  const serve: JwksServer['serve'] = (what) => {
    body = Array.isArray(what)
      ? { status: 200, text: JSON.stringify({ keys: what.map((k) => k.jwk) }), headers: { 'content-type': 'application/json' } }
      : { status: what.status ?? 200, text: what.raw, headers: what.headers ?? {} };
  };
  const start = async () => {
    server = createServer((_req, res) => {
      requests++;
      res.writeHead(body.status, body.headers).end(body.text);
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  };
  const stop = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    // Kept-alive connections would otherwise go on answering.
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  serve(keys);
  await start();
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    get requests() {
      return requests;
    },
    serve,
    stop,
    start,
    close: stop,
  };
}
