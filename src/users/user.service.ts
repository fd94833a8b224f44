import type { Em, ServiceDeps } from '../db/types.ts';
import { UserSchema } from './user.entity.ts';

export function createUserService({ orm, audit }: ServiceDeps) {
  /** Erases a user; conversations and messages follow through ON DELETE CASCADE. Idempotent. */
  async function erase(userId: string): Promise<void> {
    const em = orm.em.fork();
    await em.nativeDelete(UserSchema, { id: userId });
    audit({ userId, op: 'user.erase', outcome: 'ok' });
  }
  return { erase };
}

export type UserService = ReturnType<typeof createUserService>;

/**
 * Users are upserted on first write; nothing else creates them. Inserted in sorted order, so that transactions
 * creating the same users at once always take their locks in the same order.
 */
export async function ensureUsers(em: Em, userIds: string[]): Promise<void> {
  if (userIds.length === 0) return;
  await em.execute(
    'insert into users (id, created_at) select id, now() from jsonb_array_elements_text(?::jsonb) as u(id) on conflict (id) do nothing',
    [JSON.stringify([...new Set(userIds)].sort())],
  );
}
