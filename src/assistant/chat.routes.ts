import type { Router } from 'express';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { identityOf } from '../http/auth.ts';
import type { Services } from '../services.ts';
import { ErrorCode, GatewayError } from '../shared/errors.ts';
import { withTimeout } from '../shared/time-bounds.ts';
import { clientMessageId, contentSchema, conversationId, parse } from '../shared/validation.ts';

/** How often a repeated request looks up a reply that streams on another node. */
const REMOTE_REPLY_POLL_MS = 200;

/**
 * The waiting routes of the "todo AI chatbot" family: send a message and answer with the assistant's reply.
 * The writes are the same as over the socket, so every open tab sees the message and the reply stream.
 */
export function chatRoutes(api: Router, o: { services: Services; maxMessageChars: number; timeoutMs: number }) {
  const ChatBody = z.object({ message: contentSchema(o.maxMessageChars), conversation_id: conversationId.nullable().optional() });

  const handle = async (req: Parameters<Parameters<Router['post']>[1]>[0], res: Parameters<Parameters<Router['post']>[1]>[1]) => {
    const userId = identityOf(res).userId;
    if (req.params.userId !== undefined && req.params.userId !== userId) {
      throw new GatewayError(ErrorCode.FORBIDDEN, 'the path names another user than the token');
    }
    const body = parse(ChatBody, req.body);
    const key = req.get('Idempotency-Key');
    const outcome = await o.services.sendUserMessage(userId, {
      conversationId: body.conversation_id ?? null,
      content: body.message,
      clientMessageId: key === undefined ? null : parse(clientMessageId, key),
    });
    const deadline = Date.now() + o.timeoutMs;
    const tooSlow = () => new GatewayError(ErrorCode.TIMEOUT, 'the assistant did not answer in time; the reply goes on in the open tabs');
    let reply = await withTimeout(o.services.announceUserMessage(userId, outcome), o.timeoutMs, tooSlow);
    // A repeated request (same Idempotency-Key) whose reply still streams on another node: wait for it there.
    while (reply?.status === 'streaming') {
      const left = deadline - Date.now();
      if (left <= 0) throw tooSlow();
      await sleep(Math.min(REMOTE_REPLY_POLL_MS, left));
      reply = await o.services.findMessage(userId, reply.id);
    }
    if (reply === null || reply?.status === 'failed') {
      throw new GatewayError(ErrorCode.UNAVAILABLE, 'the assistant could not answer', { retryAfterMs: 1000 });
    }
    // Without an assistant (ASSISTANT=none) there is no reply to wait for: the answer says so with null.
    res.json({ response: reply?.content ?? null, conversation_id: outcome.data.conversation.id });
  };

  api.post('/chat', handle);
  api.post('/:userId/chat', handle);
}
