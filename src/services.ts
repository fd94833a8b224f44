import type { ConversationService } from './conversations/conversation.service.ts';
import type { MessageService, AppendResult } from './messages/message.service.ts';
import type { UserService } from './users/user.service.ts';
import type { Outcome, Publisher } from './shared/broadcast.ts';
import type { MessageDto } from './shared/events.ts';

/** The service layer shared by the REST routes and the socket handlers: a write is the same write through either door. */
export interface Services {
  conversations: ConversationService;
  messages: MessageService;
  users: UserService;
  /** Tells the user's tabs, on every node, what a committed write changed. Call it after answering. */
  publish: Publisher;
  /**
   * After a user message was stored and answered: publish it and start the assistant's reply.
   * Resolves with the reply once it has ended; a repeat whose reply runs on another node resolves with it still
   * streaming. Undefined without an assistant, null when the reply could not start; never rejects.
   */
  announceUserMessage: (userId: string, outcome: Outcome<AppendResult>) => Promise<MessageDto | null | undefined>;
  /** One of the user's messages as stored now (undefined when it is not theirs or does not exist). */
  findMessage: (userId: string, messageId: string) => Promise<MessageDto | undefined>;
  /**
   * A user's message through any door (socket, REST, /api/chat): the per-user rate limit, then the append.
   * An idempotent repeat answers with the stored message and is not counted against the limit.
   */
  sendUserMessage: (userId: string, input: { conversationId?: string | null; content: string; clientMessageId?: string | null }) => Promise<Outcome<AppendResult>>;
  /** Disconnects every socket of a user on every node (after erasure). */
  disconnectUser: (userId: string) => void;
}
