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

/** Drivers differ in what they parse (PGlite and pg, dates and bigints): accept either form. */
const iso = (v: unknown) => (v instanceof Date ? v : new Date(String(v))).toISOString();

/** A `conversations` row (columns optionally prefixed) in the wire shape. */
export function conversationFromRow(row: Record<string, unknown>, prefix = ''): ConversationDto {
  return {
    id: String(row[`${prefix}id`]),
    title: (row[`${prefix}title`] as string | null) ?? null,
    lastSeq: Number(row[`${prefix}last_seq`]),
    createdAt: iso(row[`${prefix}created_at`]),
    updatedAt: iso(row[`${prefix}updated_at`]),
  };
}

/** A `messages` row in the wire shape. */
export function messageFromRow(row: Record<string, unknown>): MessageDto {
  const metadata = row.metadata;
  return {
    id: String(row.id),
    conversationId: String(row.conversation_id),
    seq: Number(row.seq),
    role: row.role as MessageDto['role'],
    status: row.status as MessageDto['status'],
    content: String(row.content),
    metadata: typeof metadata === 'string' ? JSON.parse(metadata) : ((metadata as MessageDto['metadata']) ?? null),
    clientMessageId: (row.client_message_id as string | null) ?? null,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}
