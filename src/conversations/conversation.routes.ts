import { Router } from 'express';
import { identityOf } from '../auth/http.ts';
import type { Publisher } from '../shared/broadcast.ts';
import { restSchemas } from '../shared/commands.ts';
import { conversationId, parse } from '../shared/validation.ts';
import type { ConversationService } from './conversation.service.ts';

export interface ConversationRoutesDeps {
  conversations: ConversationService;
  publish: Publisher;
  maxMessageChars: number;
}

/** `/api/conversations`: the same writes as the socket commands, so every open tab hears of them. */
export function conversationRoutes({ conversations, publish, maxMessageChars }: ConversationRoutesDeps): Router {
  const router = Router();
  const schemas = restSchemas(maxMessageChars);
  const idParam = (raw: unknown) => parse(conversationId, raw);

  router.get('/', async (req, res) => {
    const query = parse(schemas.listQuery, req.query);
    res.json(await conversations.list(identityOf(res).userId, query));
  });

  router.post('/', async (req, res) => {
    const body = parse(schemas.createBody, req.body ?? {});
    const outcome = await conversations.create(identityOf(res).userId, body);
    res.status(201).json(outcome.data);
    publish(outcome.broadcasts);
  });

  router.get('/:id', async (req, res) => {
    const conversation = await conversations.get(identityOf(res).userId, idParam(req.params.id));
    res.json({ conversation });
  });

  router.patch('/:id', async (req, res) => {
    const body = parse(schemas.renameBody, req.body);
    const outcome = await conversations.rename(identityOf(res).userId, { conversationId: idParam(req.params.id), title: body.title });
    res.json(outcome.data);
    publish(outcome.broadcasts);
  });

  router.delete('/:id', async (req, res) => {
    const outcome = await conversations.remove(identityOf(res).userId, { conversationId: idParam(req.params.id) });
    res.status(204).end();
    publish(outcome.broadcasts);
  });

  return router;
}
