import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { v7 as uuidv7 } from 'uuid';
import { ConversationSchema } from '../conversations/conversation.entity.ts';

export const MESSAGE_ROLES = ['user', 'assistant', 'system'] as const;
export const MESSAGE_STATUSES = ['complete', 'streaming', 'stopped', 'failed'] as const;
export type MessageRole = (typeof MESSAGE_ROLES)[number];
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

export const MessageSchema = defineEntity({
  name: 'Message',
  tableName: 'messages',
  properties: {
    id: p
      .uuid()
      .primary()
      .onCreate(() => uuidv7()),
    conversation: () => p.manyToOne(ConversationSchema).mapToPk().deleteRule('cascade').fieldName('conversation_id'),
    // Denormalised owner: every read filters on it, so isolation never depends on a join.
    userId: p.string().length(255),
    seq: p.bigint('number'),
    role: p.enum(MESSAGE_ROLES),
    status: p.enum(MESSAGE_STATUSES).default('complete'),
    content: p.text(),
    metadata: p.json<Record<string, unknown>>().nullable(),
    clientMessageId: p.string().length(100).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()),
  },
  indexes: [
    // Serves the sweep of interrupted replies: only the few rows still streaming are indexed.
    {
      name: 'messages_streaming_updated_at_index',
      expression: `create index "messages_streaming_updated_at_index" on "messages" ("updated_at") where "status" = 'streaming'`,
    },
  ],
  uniques: [
    { name: 'messages_conversation_id_seq_unique', properties: ['conversation', 'seq'] },
    {
      name: 'messages_user_id_client_message_id_unique',
      expression:
        'create unique index "messages_user_id_client_message_id_unique" on "messages" ("user_id", "client_message_id") where "client_message_id" is not null',
    },
  ],
});

export type Message = InferEntity<typeof MessageSchema>;
