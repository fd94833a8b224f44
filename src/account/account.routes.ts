import { once } from 'node:events';
import { Router, type Response } from 'express';
import { identityOf } from '../auth/http.ts';
import type { Orm } from '../db/types.ts';
import type { UserLimits } from '../limits/user-limits.ts';
import type { Audit } from '../observability/audit.ts';
import type { Logger } from '../observability/logger.ts';
import type { UserService } from '../users/user.service.ts';
import { exportUser } from './export.ts';

export interface AccountRoutesDeps {
  users: UserService;
  orm: Orm;
  limits: UserLimits;
  audit: Audit;
  log: Logger;
  /** Closes every socket of the user, on every node. */
  disconnectUser: (userId: string) => void;
}

/** An export reads the user's whole history: it costs as many read points as 50 history pages. */
const EXPORT_READ_POINTS = 50;

/** `/api/me`: the signed-in user's own account: erasure and export. */
export function accountRoutes({ users, orm, limits, audit, log, disconnectUser }: AccountRoutesDeps): Router {
  const router = Router();
  // Erase the user and all their data, then close their sockets on every node.
  router.delete('/', async (_req, res) => {
    const userId = identityOf(res).userId;
    await limits.consume(userId, 'write');
    await users.erase(userId);
    res.status(204).end();
    disconnectUser(userId);
  });

  // All of the user's data as one JSON download, written as it is read (see export.ts), at the pace the client reads.
  router.get('/export', async (_req, res) => {
    const userId = identityOf(res).userId;
    await limits.consume(userId, 'read', EXPORT_READ_POINTS);
    const pieces = exportUser(orm, userId);
    // The first piece is read before the headers go out, so a database that is away still answers 503.
    let next = await pieces.next();
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Disposition', 'attachment; filename="chat-export.json"');
    res.setHeader('Cache-Control', 'no-store');
    let gone = false;
    res.once('close', () => {
      gone = true;
    });
    try {
      while (!next.done && !gone) {
        if (!res.write(next.value)) await drainedOrClosed(res);
        next = await pieces.next();
      }
    } catch (err) {
      // Headers are out: the client sees a truncated download (not valid JSON), and the cause goes to the log.
      log.error({ err, userId }, 'export cut short: reading the history failed');
      res.destroy();
      audit({ userId, op: 'user.export', outcome: 'error' });
      return;
    }
    if (gone || !next.done) return void (await pieces.return({ conversations: 0, messages: 0 }));
    res.end();
    audit({ userId, op: 'user.export', outcome: 'ok', count: next.value.messages });
  });
  return router;
}

/**
 * Waits until `res` can take more, or is gone. The listener that did not fire is removed: a long export waits
 * thousands of times, and listeners left on the response would pile up until it ends.
 */
async function drainedOrClosed(res: Response): Promise<void> {
  const done = new AbortController();
  try {
    await Promise.race([once(res, 'drain', { signal: done.signal }), once(res, 'close', { signal: done.signal })]);
  } finally {
    done.abort();
  }
}
