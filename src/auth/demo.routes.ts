import { Router } from 'express';
import { z } from 'zod';
import type { AuthConfig } from './keys.ts';
import { parse } from '../shared/validation.ts';
import { signToken } from './jwt.ts';

const DEMO_TOKEN_TTL_S = 8 * 3600;
const TokenRequest = z.object({
  name: z
    .string()
    .trim()
    .min(1)
    .max(64)
    .regex(/^[\p{L}\p{N} ._-]+$/u, 'letters, digits, space, dot, dash and underscore only'),
});

/**
 * Demo mode only (no key configured): anyone can get a token for a typed user name.
 * This route is never mounted when JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL is set.
 */
export function demoRoutes(auth: AuthConfig): Router {
  if (!auth.demo || auth.kind !== 'secret') throw new Error('demo routes need demo mode');
  const secret = auth.key;
  const router = Router();
  router.post('/token', (req, res) => {
    const { name } = parse(TokenRequest, req.body);
    const token = signToken(secret, name, { expiresInS: DEMO_TOKEN_TTL_S, issuer: auth.issuer, audience: auth.audience });
    res.json({ token, userId: name, expiresAt: new Date(Date.now() + DEMO_TOKEN_TTL_S * 1000).toISOString() });
  });
  return router;
}
