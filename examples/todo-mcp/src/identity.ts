// The identity contract with the gateway: for each tool call it mints an HS256 token with the user id as
// `sub`, this server's name as `aud` and itself as `iss`. The user id reaches the tools only from here.
import { createSecretKey } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { z } from 'zod';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import type { OAuthTokenVerifier } from '@modelcontextprotocol/sdk/server/auth/provider.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';

export const TOKEN_ISSUER = 'chat-gateway';
/**
 * Tokens are minted per call with about 60 s to live. One that claims much longer was not minted for a
 * single call; refusing it bounds what a token copied out of a log or a proxy is worth.
 */
export const MAX_TOKEN_LIFETIME_S = 300;
/** Containers' clocks drift a little; more slack would stretch the lifetime bound. */
const CLOCK_TOLERANCE_S = 5;

const ClaimsSchema = z.object({
  sub: z.string().min(1).max(255),
  exp: z.number().int().positive(),
});

export interface TokenOptions {
  secret: string;
  audience: string;
}

/**
 * Verifies the bearer token for the SDK's `requireBearerAuth`, which answers 401 with `WWW-Authenticate`
 * for every `InvalidTokenError` thrown here.
 */
export function tokenVerifier({ secret, audience }: TokenOptions): OAuthTokenVerifier {
  // Parsed once: given the string, jsonwebtoken would first try it as a PEM key on every call.
  const key = createSecretKey(Buffer.from(secret));
  const options: jwt.VerifyOptions & { complete?: false } = {
    algorithms: ['HS256'],
    audience,
    issuer: TOKEN_ISSUER,
    clockTolerance: CLOCK_TOLERANCE_S,
  };
  return {
    async verifyAccessToken(token: string): Promise<AuthInfo> {
      let payload: string | jwt.JwtPayload;
      try {
        payload = jwt.verify(token, key, options);
      } catch (err) {
        if (err instanceof jwt.TokenExpiredError) throw new InvalidTokenError('token expired');
        // A fixed text: jsonwebtoken's own ("jwt audience invalid. expected: …") would reveal the configuration.
        throw new InvalidTokenError('token refused');
      }
      const claims = ClaimsSchema.safeParse(payload);
      if (!claims.success) throw new InvalidTokenError('token needs a sub of 1 to 255 characters and an exp');
      const { sub, exp } = claims.data;
      if (exp - Date.now() / 1000 > MAX_TOKEN_LIFETIME_S + CLOCK_TOLERANCE_S) {
        throw new InvalidTokenError(`token lives longer than ${MAX_TOKEN_LIFETIME_S} s`);
      }
      return { token, clientId: TOKEN_ISSUER, scopes: [], expiresAt: exp, extra: { userId: sub } };
    },
  };
}

/** The user a verified request acts for; only `tokenVerifier` puts it there. */
export function userIdOf(auth: AuthInfo | undefined): string {
  const userId = auth?.extra?.userId;
  // Unreachable behind requireBearerAuth; a route mounted without it must fail closed, not act for nobody.
  if (typeof userId !== 'string') throw new Error('request reached a tool route without a verified token');
  return userId;
}
