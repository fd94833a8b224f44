import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/**
 * A user is known only by the JWT `sub`; the row exists so deleting it cascades to everything they own. When the
 * user erases their account, everything of theirs is deleted and the row stays as a tombstone: `erasedAt` says
 * when, so tokens issued before it are refused and nothing in flight with one can bring anything back.
 */
export const UserSchema = defineEntity({
  name: 'User',
  tableName: 'users',
  properties: {
    id: p.string().length(255).primary(),
    createdAt: p
      .datetime()
      .defaultRaw('now()')
      .onCreate(() => new Date()),
    erasedAt: p.datetime().nullable(),
  },
});

export type User = InferEntity<typeof UserSchema>;
