import { isoTime } from '../db/rows.ts';
import type { MessageDto } from '../shared/events.ts';
import type { Message } from './message.entity.ts';

/** A message in its wire shape. */
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
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
  };
}
