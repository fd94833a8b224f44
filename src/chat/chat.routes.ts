import { Router, type Request, type Response } from 'express';
import { setTimeout as sleep } from 'node:timers/promises';
import { identityOf } from '../auth/http.ts';
import type { MessageService } from '../messages/message.service.ts';
import { restSchemas } from '../shared/commands.ts';
import { ErrorCode, GatewayError } from '../shared/errors.ts';
import { withTimeout } from '../shared/time-bounds.ts';
import { clientMessageId, parse } from '../shared/validation.ts';
import type { ClientInfo, SendMessage } from './send-message.ts';

/** How often a repeated request looks up a reply that streams on another node. */
const REMOTE_REPLY_POLL_MS = 200;

export interface ChatRoutesDeps {
  sendMessage: SendMessage;
  messages: Pick<MessageService, 'find'>;
  maxMessageChars: number;
  /** How long a request waits for the reply before 504 TIMEOUT. */
  timeoutMs: number;
  /** What is recorded of the client with each message. */
  clientInfo: (req: Request) => ClientInfo;
}

/**
 * The waiting routes of the "todo AI chatbot" family: send a message and answer with the assistant's reply.
 * The writes are the same as over the socket, so every open tab sees the message and the reply stream.
 */
export function chatRoutes({ sendMessage, messages, maxMessageChars, timeoutMs, clientInfo }: ChatRoutesDeps): Router {
  const router = Router();
  const { chatBody } = restSchemas(maxMessageChars);

  const handle = async (req: Request, res: Response) => {
    const userId = identityOf(res).userId;
    if (req.params.userId !== undefined && req.params.userId !== userId) {
      throw new GatewayError(ErrorCode.FORBIDDEN, 'the path names another user than the token');
    }
    const body = parse(chatBody, req.body);
    const key = req.get('Idempotency-Key');
    const sent = await sendMessage(userId, {
      conversationId: body.conversation_id ?? null,
      content: body.message,
      clientMessageId: key === undefined ? null : parse(clientMessageId, key),
      client: clientInfo(req),
      issuedAt: identityOf(res).issuedAt,
    });
    const deadline = Date.now() + timeoutMs;
    const tooSlow = () => new GatewayError(ErrorCode.TIMEOUT, 'the assistant did not answer in time; the reply goes on in the open tabs');
    let reply = await withTimeout(sent.announce(), timeoutMs, tooSlow);
    // A repeated request (same Idempotency-Key) whose reply still streams on another node: wait for it there.
    while (reply?.status === 'streaming') {
      const left = deadline - Date.now();
      if (left <= 0) throw tooSlow();
      await sleep(Math.min(REMOTE_REPLY_POLL_MS, left));
      reply = await messages.find(userId, reply.id);
    }
    if (reply === null || reply?.status === 'failed') {
      throw new GatewayError(ErrorCode.UNAVAILABLE, 'the assistant could not answer', { retryAfterMs: 1000 });
    }
    // Without an assistant (ASSISTANT=none) there is no reply to wait for: the answer says so with null.
    res.json({ response: reply?.content ?? null, conversation_id: sent.data.conversation.id });
  };

  router.post('/chat', handle);
  router.post('/:userId/chat', handle);
  return router;
}
