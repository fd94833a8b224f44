import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/** A user is known only by the JWT `sub`; the row exists so deleting it cascades to everything they own. */
export const UserSchema = defineEntity({
  name: 'User',
  tableName: 'users',
  properties: {
    id: p.string().length(255).primary(),
    createdAt: p
      .datetime()
      .defaultRaw('now()')
      .onCreate(() => new Date()),
  },
});

export type User = InferEntity<typeof UserSchema>;
