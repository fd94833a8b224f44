import { Router } from 'express';
import { z } from 'zod';
import { identityOf } from '../http/auth.ts';
import type { Services } from '../services.ts';
import { ErrorCode, GatewayError } from '../shared/errors.ts';
import { clientMessageId, contentSchema, conversationId, parse, renameTitle, seq, title } from '../shared/validation.ts';

const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(200).optional(),
});
const HistoryQuery = z.object({
  before: seq.optional(),
  after: seq.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
const CreateBody = z.object({ title }).default({ title: null });
const RenameBody = z.object({ title: renameTitle });

export function conversationRoutes(services: Services, maxMessageChars: number): Router {
  const router = Router();
  const SendBody = z.object({ content: contentSchema(maxMessageChars), clientMessageId: clientMessageId.optional() });
  const idParam = (raw: unknown) => parse(conversationId, raw);

  router.get('/', async (req, res) => {
    const query = parse(ListQuery, req.query);
    res.json(await services.conversations.list(identityOf(res).userId, query));
  });

  router.post('/', async (req, res) => {
    const body = parse(CreateBody, req.body ?? {});
    const outcome = await services.conversations.create(identityOf(res).userId, body);
    res.status(201).json(outcome.data);
    services.publish(outcome.broadcasts);
  });

  router.get('/:id', async (req, res) => {
    const conversation = await services.conversations.get(identityOf(res).userId, idParam(req.params.id));
    res.json({ conversation });
  });

  router.patch('/:id', async (req, res) => {
    const body = parse(RenameBody, req.body);
    const outcome = await services.conversations.rename(identityOf(res).userId, { conversationId: idParam(req.params.id), title: body.title });
    res.json(outcome.data);
    services.publish(outcome.broadcasts);
  });

  router.delete('/:id', async (req, res) => {
    const outcome = await services.conversations.remove(identityOf(res).userId, { conversationId: idParam(req.params.id) });
    res.status(204).end();
    services.publish(outcome.broadcasts);
  });

  router.get('/:id/messages', async (req, res) => {
    const query = parse(HistoryQuery, req.query);
    res.json(await services.messages.history(identityOf(res).userId, idParam(req.params.id), query));
  });

  router.post('/:id/messages', async (req, res) => {
    const id = idParam(req.params.id);
    const body = parse(SendBody, req.body);
    const headerKey = req.get('Idempotency-Key');
    const key = headerKey === undefined ? undefined : parse(clientMessageId, headerKey);
    if (key && body.clientMessageId && key !== body.clientMessageId) {
      throw new GatewayError(ErrorCode.VALIDATION, 'Idempotency-Key and clientMessageId differ');
    }
    const userId = identityOf(res).userId;
    const outcome = await services.sendUserMessage(userId, {
      conversationId: id,
      content: body.content,
      clientMessageId: body.clientMessageId ?? key ?? null,
    });
    res.status(outcome.data.duplicate ? 200 : 201).json({ message: outcome.data.message });
    void services.announceUserMessage(userId, outcome);
  });

  return router;
}
