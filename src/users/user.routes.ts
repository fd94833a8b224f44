import { Router } from 'express';
import { identityOf } from '../auth/http.ts';
import type { UserLimits } from '../limits/user-limits.ts';
import type { UserService } from './user.service.ts';

export interface UserRoutesDeps {
  users: UserService;
  limits: UserLimits;
  /** Closes every socket of the user, on every node. */
  disconnectUser: (userId: string) => void;
}

/** `/api/me`: the signed-in user's own account. */
export function userRoutes({ users, limits, disconnectUser }: UserRoutesDeps): Router {
  const router = Router();
  // Erase the user and all their data, then close their sockets on every node.
  router.delete('/', async (_req, res) => {
    const userId = identityOf(res).userId;
    await limits.consume(userId, 'write');
    await users.erase(userId);
    res.status(204).end();
    disconnectUser(userId);
  });
  return router;
}
