import { Router } from 'express';
import { identityOf } from '../auth/http.ts';
import type { UserLimits } from '../limits/user-limits.ts';
import type { Publisher } from '../shared/broadcast.ts';
import { restSchemas } from '../shared/commands.ts';
import { conversationId, parse } from '../shared/validation.ts';
import type { ConversationService } from './conversation.service.ts';

export interface ConversationRoutesDeps {
  conversations: ConversationService;
  publish: Publisher;
  limits: UserLimits;
  maxMessageChars: number;
}

/** `/api/conversations`: the same writes as the socket commands, so every open tab hears of them. */
export function conversationRoutes({ conversations, publish, limits, maxMessageChars }: ConversationRoutesDeps): Router {
  const router = Router();
  const schemas = restSchemas(maxMessageChars);
  const idParam = (raw: unknown) => parse(conversationId, raw);

  router.get('/', async (req, res) => {
    const query = parse(schemas.listQuery, req.query);
    const userId = identityOf(res).userId;
    await limits.consume(userId, 'read');
    res.json(await conversations.list(userId, query));
  });

  router.post('/', async (req, res) => {
    const body = parse(schemas.createBody, req.body ?? {});
    const userId = identityOf(res).userId;
    await limits.consume(userId, 'write');
    const outcome = await conversations.create(userId, body, identityOf(res).issuedAt);
    res.status(outcome.data.created ? 201 : 200).json({ conversation: outcome.data.conversation });
    publish(outcome.broadcasts);
  });

  router.get('/:id', async (req, res) => {
    const id = idParam(req.params.id);
    const userId = identityOf(res).userId;
    await limits.consume(userId, 'read');
    const conversation = await conversations.get(userId, id);
    res.json({ conversation });
  });

  router.patch('/:id', async (req, res) => {
    const body = parse(schemas.renameBody, req.body);
    const id = idParam(req.params.id);
    const userId = identityOf(res).userId;
    await limits.consume(userId, 'write');
    const outcome = await conversations.rename(userId, { conversationId: id, title: body.title });
    res.json(outcome.data);
    publish(outcome.broadcasts);
  });

  router.delete('/:id', async (req, res) => {
    const id = idParam(req.params.id);
    const userId = identityOf(res).userId;
    await limits.consume(userId, 'write');
    const outcome = await conversations.remove(userId, { conversationId: id });
    res.status(204).end();
    publish(outcome.broadcasts);
  });

  return router;
}
