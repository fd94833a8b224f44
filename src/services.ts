import type { ConversationService } from './conversations/conversation.service.ts';
import type { MessageService, AppendResult } from './messages/message.service.ts';
import type { UserService } from './users/user.service.ts';
import type { Outcome, Publisher } from './shared/broadcast.ts';
import type { MessageDto } from './shared/events.ts';
import type { SendLimiter } from './limits/send-limiter.ts';

/** The service layer shared by the REST routes and the socket handlers: a write is the same write through either door. */
export interface Services {
  conversations: ConversationService;
  messages: MessageService;
  users: UserService;
  /** Tells the user's tabs, on every node, what a committed write changed. Call it after answering. */
  publish: Publisher;
  /**
   * After a user message was stored and answered: publish it and start the assistant's reply.
   * Resolves with the reply once it has ended (undefined without an assistant); never rejects.
   */
  announceUserMessage: (userId: string, outcome: Outcome<AppendResult>) => Promise<MessageDto | undefined>;
  /** Per-user limit on sends, through either door; throws RATE_LIMITED. */
  limitSend: SendLimiter;
  /** Disconnects every socket of a user on every node (after erasure). */
  disconnectUser: (userId: string) => void;
}
