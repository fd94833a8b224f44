import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { identityOf } from '../auth/http.ts';
import { historyCost, type UserLimits } from '../limits/user-limits.ts';
import type { MessageService } from '../messages/message.service.ts';
import { ErrorCode, GatewayError } from '../shared/errors.ts';
import { conversationId, LIMITS, parse, queryPageLimit, seq } from '../shared/validation.ts';

export interface SeedRoutesDeps {
  messages: Pick<MessageService, 'history'>;
  limits: UserLimits;
}

const HistoryQuery = z.object({ before: seq.optional(), limit: queryPageLimit(LIMITS.historyPage) });

/**
 * The routes of the "todo AI chatbot" apps' own frontend, in their shape: the user id in the path (which must be
 * the token's), snake_case fields, and a bare array. Their sibling `POST /api/:userId/chat` is in chat.routes.ts.
 */
export function seedRoutes({ messages, limits }: SeedRoutesDeps): Router {
  const router = Router();

  router.get('/:userId/conversations/:conversationId/messages', async (req: Request, res: Response) => {
    const userId = identityOf(res).userId;
    if (req.params.userId !== userId) throw new GatewayError(ErrorCode.FORBIDDEN, 'the path names another user than the token');
    const id = parse(conversationId, req.params.conversationId);
    const query = parse(HistoryQuery, req.query);
    await limits.consume(userId, 'read', historyCost(query.limit));
    const page = await messages.history(userId, id, query);
    res.json(page.messages.map((m) => ({ id: m.id, role: m.role, content: m.content, created_at: m.createdAt })));
  });

  return router;
}
