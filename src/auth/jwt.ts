import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { errors as jose, jwtVerify, type JWTPayload } from 'jose';
import jwt from 'jsonwebtoken';
import { z } from 'zod';
import type { JwksKeys } from './jwks.ts';
import type { AuthConfig, PublicKeyAuth, SecretAuth, SecretKey } from './keys.ts';
import { ErrorCode, GatewayError } from '../shared/errors.ts';

export interface Identity {
  /** The user id: the token's `sub`. Identity never comes from a payload. */
  userId: string;
  /** Expiry, in seconds since the epoch. */
  exp: number;
  /** When the token was issued (`iat`), in seconds since the epoch; tokens issued before a user's erasure are refused. */
  issuedAt?: number;
}

const ClaimsSchema = z.object({
  sub: z.string().min(1).max(255),
  exp: z.number().int().positive(),
  iat: z.number().nonnegative().optional(),
});

/**
 * Verifies a bearer token: resolves with the identity, or rejects with a GatewayError UNAUTHORIZED or
 * TOKEN_EXPIRED whose text says nothing of the configuration. Asynchronous because a token signed with a key
 * the gateway has not seen yet may need the provider's key set fetched first (JWT_JWKS_URL).
 */
export type TokenVerifier = (token: unknown) => Promise<Identity>;

/**
 * Verifies bearer tokens with pinned algorithms; used by the REST routes and the socket handshake alike.
 * `jwks` is the key store the JWKS configuration needs (createJwksKeys); the other configurations ignore it.
 */
export function createTokenVerifier(auth: AuthConfig, jwks?: JwksKeys): TokenVerifier {
  if (auth.kind === 'jwks') {
    if (!jwks) throw new Error('a JWKS configuration verifies with its key store: pass createJwksKeys(…)');
    return jwksVerifier(auth, jwks);
  }
  const verify = staticVerifier(auth);
  // A static key needs nothing to wait for: the token is verified now, and the caller's await costs a fraction of
  // a microsecond against the signature's ten or more (npm run bench:jwt).
  return (token) => {
    try {
      return Promise.resolve(verify(token));
    } catch (err) {
      return Promise.reject(err);
    }
  };
}

const tokenRequired = () => new GatewayError(ErrorCode.UNAUTHORIZED, 'a bearer token is required');
const tokenExpired = () => new GatewayError(ErrorCode.TOKEN_EXPIRED, 'the token has expired');
// A fixed text: the libraries' own (e.g. "jwt audience invalid. expected: …") would reveal the configuration.
const tokenRefused = () => new GatewayError(ErrorCode.UNAUTHORIZED, 'the token was refused');

/** An HS secret (with the previous one during a rotation) or a PEM public key, through jsonwebtoken. */
function staticVerifier(auth: SecretAuth | PublicKeyAuth): (token: unknown) => Identity {
  const options: jwt.VerifyOptions & { complete?: false } = {
    algorithms: auth.algorithms as jwt.Algorithm[],
    issuer: auth.issuer,
    audience: auth.audience,
  };
  const rotation: SecretKey[] | undefined =
    auth.kind === 'secret' && auth.previous ? [{ keyObject: auth.keyObject, kid: auth.kid }, auth.previous] : undefined;

  return function verifyToken(token: unknown): Identity {
    if (typeof token !== 'string' || token.length === 0) throw tokenRequired();
    let payload: string | jwt.JwtPayload;
    try {
      payload = jwt.verify(token, rotation ? secretFor(token, rotation) : auth.keyObject, options);
    } catch (err) {
      if (err instanceof jwt.TokenExpiredError) throw tokenExpired();
      throw tokenRefused();
    }
    return claimsOf(payload);
  };
}

/**
 * During a secret rotation, the secret that verifies: the one the token's kid names, when it names one; otherwise
 * the one whose HMAC matches the signature (the current secret when none does, and jsonwebtoken then refuses the
 * token). Choosing first rather than trying one secret after the other keeps a refused attempt, and the error
 * jsonwebtoken builds for it (stack trace included), off the path of every token of the previous secret: tried in
 * turn, those cost three to four times a token of the current one (npm run bench:jwt).
 */
function secretFor(token: string, keys: SecretKey[]): KeyObject {
  const headerEnd = token.indexOf('.');
  const signatureStart = token.lastIndexOf('.');
  let header: { kid?: unknown; alg?: unknown };
  try {
    header = JSON.parse(Buffer.from(token.slice(0, headerEnd), 'base64url').toString('utf8'));
  } catch {
    return keys[0]!.keyObject;
  }
  const named = typeof header.kid === 'string' ? keys.find((k) => k.kid === header.kid) : undefined;
  if (named) return named.keyObject;
  const hash = typeof header.alg === 'string' ? HMAC_HASH[header.alg] : undefined;
  if (!hash || signatureStart <= headerEnd) return keys[0]!.keyObject;
  const input = token.slice(0, signatureStart);
  const signature = Buffer.from(token.slice(signatureStart + 1), 'base64url');
  const matches = (k: SecretKey) => {
    const mac = createHmac(hash, k.keyObject).update(input).digest();
    return mac.length === signature.length && timingSafeEqual(mac, signature);
  };
  return (keys.find(matches) ?? keys[0]!).keyObject;
}

const HMAC_HASH: Record<string, string> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

/**
 * The identity provider's keys, through jose: jsonwebtoken 9 has no EdDSA (Ed25519 is what Better Auth signs with),
 * and jose also picks the key of a set for a token (createLocalJWKSet). Its checks are those of the static path:
 * algorithms pinned before any key is looked up, signature, then `nbf`, `exp`, issuer and audience.
 */
function jwksVerifier(auth: AuthConfig, jwks: JwksKeys): TokenVerifier {
  const options = { algorithms: auth.algorithms, issuer: auth.issuer, audience: auth.audience };
  return async function verifyToken(token: unknown): Promise<Identity> {
    if (typeof token !== 'string' || token.length === 0) throw tokenRequired();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks.keyFor, options));
    } catch (err) {
      if (err instanceof jose.JWTExpired) throw tokenExpired();
      throw tokenRefused();
    }
    return claimsOf(payload);
  };
}

function claimsOf(payload: unknown): Identity {
  const claims = ClaimsSchema.safeParse(payload);
  if (!claims.success) {
    throw new GatewayError(ErrorCode.UNAUTHORIZED, 'the token needs a sub of 1 to 255 characters and an exp');
  }
  return { userId: claims.data.sub, exp: claims.data.exp, issuedAt: claims.data.iat };
}

/** Reads `Authorization: Bearer <jwt>`. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1];
}

/** Signs a token with an HS secret; for demo mode, tests and the load tester. */
export function signToken(secret: string, sub: string, options: { expiresInS?: number; issuer?: string; audience?: string } = {}): string {
  return jwt.sign({}, secret, {
    algorithm: 'HS256',
    subject: sub,
    expiresIn: options.expiresInS ?? 3600,
    // jsonwebtoken refuses keys that are present but undefined.
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
  });
}
