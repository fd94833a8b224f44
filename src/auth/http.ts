import type { RequestHandler, Response } from 'express';
import { bearerToken, type Identity, type TokenVerifier } from './jwt.ts';

/** Verifies `Authorization: Bearer <jwt>` and leaves the identity in res.locals; express 5 passes a refusal on to the error mapper. */
export function requireAuth(verifyToken: TokenVerifier): RequestHandler {
  return async (req, res, next) => {
    res.locals.identity = await verifyToken(bearerToken(req.headers.authorization));
    next();
  };
}

export function identityOf(res: Response): Identity {
  return res.locals.identity as Identity;
}
