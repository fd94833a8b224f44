import { Router, type Request } from 'express';
import { identityOf } from '../auth/http.ts';
import { historyCost, type UserLimits } from '../limits/user-limits.ts';
import type { MessageService } from '../messages/message.service.ts';
import { restSchemas } from '../shared/commands.ts';
import { ErrorCode, GatewayError } from '../shared/errors.ts';
import { clientMessageId, conversationId, parse } from '../shared/validation.ts';
import type { ClientInfo, SendMessage } from './send-message.ts';

export interface MessageRoutesDeps {
  messages: MessageService;
  sendMessage: SendMessage;
  limits: UserLimits;
  maxMessageChars: number;
  /** What is recorded of the client with each message. */
  clientInfo: (req: Request) => ClientInfo;
}

/** `/api/conversations/:id/messages`: history, and sending as `message:send` does. */
export function messageRoutes({ messages, sendMessage, limits, maxMessageChars, clientInfo }: MessageRoutesDeps): Router {
  const router = Router();
  const schemas = restSchemas(maxMessageChars);
  const idParam = (raw: unknown) => parse(conversationId, raw);

  router.get('/:id/messages', async (req, res) => {
    const query = parse(schemas.historyQuery, req.query);
    const id = idParam(req.params.id);
    const userId = identityOf(res).userId;
    await limits.consume(userId, 'read', historyCost(query.limit));
    res.json(await messages.history(userId, id, query));
  });

  router.post('/:id/messages', async (req, res) => {
    const id = idParam(req.params.id);
    const body = parse(schemas.sendBody, req.body);
    const headerKey = req.get('Idempotency-Key');
    const key = headerKey === undefined ? undefined : parse(clientMessageId, headerKey);
    if (key && body.clientMessageId && key !== body.clientMessageId) {
      throw new GatewayError(ErrorCode.VALIDATION, 'Idempotency-Key and clientMessageId differ');
    }
    const sent = await sendMessage(identityOf(res).userId, {
      conversationId: id,
      content: body.content,
      clientMessageId: body.clientMessageId ?? key ?? null,
      client: clientInfo(req),
      issuedAt: identityOf(res).issuedAt,
    });
    res.status(sent.data.duplicate ? 200 : 201).json({ message: sent.data.message });
    void sent.announce();
  });

  return router;
}
