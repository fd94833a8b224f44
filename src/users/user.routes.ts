import { Router } from 'express';
import { identityOf } from '../http/auth.ts';
import type { Services } from '../services.ts';

export function userRoutes(services: Services): Router {
  const router = Router();
  // Erase the user and all their data, then close their sockets on every node.
  router.delete('/', async (_req, res) => {
    const userId = identityOf(res).userId;
    await services.users.erase(userId);
    res.status(204).end();
    services.disconnectUser(userId);
  });
  return router;
}
