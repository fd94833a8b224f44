import { isoTime } from '../db/rows.ts';
import type { ConversationDto } from '../shared/events.ts';
import type { Conversation } from './conversation.entity.ts';

/** A conversation in its wire shape. */
export function toConversationDto(c: Conversation): ConversationDto {
  return {
    id: c.id,
    title: c.title ?? null,
    lastSeq: Number(c.lastSeq),
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
  };
}

/** A `conversations` row (columns optionally prefixed) in the wire shape. */
export function conversationFromRow(row: Record<string, unknown>, prefix = ''): ConversationDto {
  return {
    id: String(row[`${prefix}id`]),
    title: (row[`${prefix}title`] as string | null) ?? null,
    lastSeq: Number(row[`${prefix}last_seq`]),
    createdAt: isoTime(row[`${prefix}created_at`]),
    updatedAt: isoTime(row[`${prefix}updated_at`]),
  };
}
