import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { v7 as uuidv7 } from 'uuid';
import { UserSchema } from '../users/user.entity.ts';

export const ConversationSchema = defineEntity({
  name: 'Conversation',
  tableName: 'conversations',
  properties: {
    id: p
      .uuid()
      .primary()
      .onCreate(() => uuidv7()),
    user: () => p.manyToOne(UserSchema).mapToPk().deleteRule('cascade').fieldName('user_id'),
    title: p.string().length(200).nullable(),
    // Highest seq handed out in this conversation; bumped in the same transaction as each message insert.
    lastSeq: p.bigint('number').default(0),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()),
  },
  indexes: [
    // Serves the conversation list: newest first per user, id as tie-breaker for stable cursors.
    {
      name: 'conversations_user_id_updated_at_index',
      expression: 'create index "conversations_user_id_updated_at_index" on "conversations" ("user_id", "updated_at" desc, "id" desc)',
    },
    // Serves the retention sweep: conversations idle since before a cutoff, whoever owns them.
    { name: 'conversations_updated_at_index', properties: ['updatedAt'] },
  ],
});

export type Conversation = InferEntity<typeof ConversationSchema>;
