import type { Conversation } from '../conversations/conversation.entity.ts';
import type { Message } from '../messages/message.entity.ts';
import type { ConversationDto, MessageDto } from './events.ts';

export function toConversationDto(c: Conversation): ConversationDto {
  return {
    id: c.id,
    title: c.title ?? null,
    lastSeq: Number(c.lastSeq),
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
  };
}

export function toMessageDto(m: Message): MessageDto {
  return {
    id: m.id,
    conversationId: m.conversation,
    seq: Number(m.seq),
    role: m.role,
    status: m.status,
    content: m.content,
    metadata: m.metadata ?? null,
    clientMessageId: m.clientMessageId ?? null,
    createdAt: m.createdAt.toISOString(),
    updatedAt: m.updatedAt.toISOString(),
  };
}
