import type { Assistant } from '../assistant/assistant.ts';
import type { UserLimits } from '../limits/user-limits.ts';
import type { AppendResult, MessageService } from '../messages/message.service.ts';
import type { Logger } from '../observability/logger.ts';
import type { Outcome, Publisher } from '../shared/broadcast.ts';
import { ErrorCode, GatewayError } from '../shared/errors.ts';
import type { MessageDto } from '../shared/events.ts';
import { withTimeout } from '../shared/time-bounds.ts';

export interface SendInput {
  /** Absent: a new conversation is started, titled from the content. */
  conversationId?: string | null;
  content: string;
  /** The idempotency key: the same key again answers with the stored message and nothing happens twice. */
  clientMessageId?: string | null;
  /** Who sent it, as recorded in the message's `metadata.client`. */
  client?: ClientInfo;
  /** When the sender's token was issued (`iat`, seconds): a user erased since is not created again. */
  issuedAt?: number;
}

/** What is recorded of the client with a message (see http/client-info.ts). */
export interface ClientInfo {
  userAgent?: string;
  /** Only when the operator opts in (RECORD_CLIENT_ADDRESS). */
  address?: string;
}

/** A stored user message, and what its door does once it has answered. */
export interface Sent {
  data: AppendResult;
  /**
   * Call after answering: tells every tab of the user, on every node, and starts the assistant's reply.
   * Resolves with the reply once it has ended; a repeat whose reply runs on another node resolves with it still
   * streaming. Undefined without an assistant, null when the reply could not start; never rejects.
   */
  announce(): Promise<MessageDto | null | undefined>;
}

export interface SendMessageDeps {
  limits: UserLimits;
  messages: MessageService;
  assistant: Assistant;
  publish: Publisher;
  log: Logger;
  /** How long a send may wait for its commit before it answers UNAVAILABLE (the outcome then unknown to the client). */
  writeTimeoutMs: number;
}

/**
 * The send use case, the same through every door (socket `message:send`, REST, `/api/chat`): the per-user rate
 * limit, the append (acknowledged only once committed), then, after the door has answered, the broadcast and
 * the assistant's reply.
 */
export function createSendMessage({ limits, messages, assistant, publish, log, writeTimeoutMs }: SendMessageDeps) {
  function announcer(userId: string, outcome: Outcome<AppendResult>) {
    return () => {
      publish(outcome.broadcasts);
      // On a repeat replyTo finds the reply stored with the first attempt and waits for it or returns it.
      return assistant.replyTo(userId, outcome.data.message, outcome.data.reply).catch((err) => {
        log.error({ err, messageId: outcome.data.message.id }, 'assistant reply could not start');
        return null;
      });
    };
  }

  return async function sendMessage(userId: string, input: SendInput): Promise<Sent> {
    // A repeat costs a send too: retries are rare for honest clients, and free repeats would be free work.
    await limits.consume(userId, 'send');
    // The reply is stored with the message: acknowledged together, so no acknowledged message is left without one.
    const { client, ...message } = input;
    const metadata = client && (client.userAgent || client.address) ? { client } : null;
    const appending = messages.append(userId, { ...message, metadata, reply: assistant.newReply() });
    const outcome = await withTimeout(appending, writeTimeoutMs, () => {
      // The client hears UNAVAILABLE and retries with the same key. Should the write commit after all, its tabs
      // still hear of it and its reply still runs, here, as if it had been answered in time.
      appending.then(
        (late) => void announcer(userId, late)(),
        () => undefined,
      );
      return new GatewayError(
        ErrorCode.UNAVAILABLE,
        'the database did not commit the message in time; retry with the same clientMessageId',
        {
          retryAfterMs: 1000,
        },
      );
    });
    return { data: outcome.data, announce: announcer(userId, outcome) };
  };
}

export type SendMessage = ReturnType<typeof createSendMessage>;
