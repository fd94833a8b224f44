import type { ServiceDeps } from '../conversations/conversation.service.ts';
import { audit } from '../observability/logger.ts';
import { UserSchema } from './user.entity.ts';

export function createUserService({ orm, log }: ServiceDeps) {
  /** Erases a user; conversations and messages follow through ON DELETE CASCADE. Idempotent. */
  async function erase(userId: string): Promise<void> {
    const em = orm.em.fork();
    await em.nativeDelete(UserSchema, { id: userId });
    audit(log, { userId, op: 'user.erase', outcome: 'ok' });
  }
  return { erase };
}

export type UserService = ReturnType<typeof createUserService>;
