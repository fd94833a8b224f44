import type { RequestHandler, Response } from 'express';
import { bearerToken, type Identity, type TokenVerifier } from './jwt.ts';

/** Verifies `Authorization: Bearer <jwt>` and leaves the identity in res.locals. */
export function requireAuth(verifyToken: TokenVerifier): RequestHandler {
  return (req, res, next) => {
    res.locals.identity = verifyToken(bearerToken(req.headers.authorization));
    next();
  };
}

export function identityOf(res: Response): Identity {
  return res.locals.identity as Identity;
}
