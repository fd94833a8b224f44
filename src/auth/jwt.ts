import jwt from 'jsonwebtoken';
import { z } from 'zod';
import type { AuthConfig } from './keys.ts';
import { ErrorCode, GatewayError } from '../shared/errors.ts';

export interface Identity {
  /** The user id: the token's `sub`. Identity never comes from a payload. */
  userId: string;
  /** Expiry, in seconds since the epoch. */
  exp: number;
}

const ClaimsSchema = z.object({
  sub: z.string().min(1).max(255),
  exp: z.number().int().positive(),
});

/** Verifies bearer tokens with pinned algorithms; used by the REST routes and the socket handshake alike. */
export function createTokenVerifier(auth: AuthConfig) {
  const options: jwt.VerifyOptions & { complete?: false } = {
    algorithms: auth.algorithms as jwt.Algorithm[],
    issuer: auth.issuer,
    audience: auth.audience,
  };

  return function verifyToken(token: unknown): Identity {
    if (typeof token !== 'string' || token.length === 0) {
      throw new GatewayError(ErrorCode.UNAUTHORIZED, 'a bearer token is required');
    }
    let payload: string | jwt.JwtPayload;
    try {
      payload = jwt.verify(token, auth.keyObject, options);
    } catch (err) {
      if (err instanceof jwt.TokenExpiredError) {
        throw new GatewayError(ErrorCode.TOKEN_EXPIRED, 'the token has expired');
      }
      // A fixed text: jsonwebtoken's own (e.g. "jwt audience invalid. expected: …") would reveal the configuration.
      throw new GatewayError(ErrorCode.UNAUTHORIZED, 'the token was refused');
    }
    const claims = ClaimsSchema.safeParse(payload);
    if (!claims.success) {
      throw new GatewayError(ErrorCode.UNAUTHORIZED, 'the token needs a sub of 1 to 255 characters and an exp');
    }
    return { userId: claims.data.sub, exp: claims.data.exp };
  };
}

export type TokenVerifier = ReturnType<typeof createTokenVerifier>;

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
