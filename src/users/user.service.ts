import type { TokenVerifier } from '../auth/jwt.ts';
import type { Em, ServiceDeps } from '../db/types.ts';
import { ErrorCode, GatewayError } from '../shared/errors.ts';

/** Who acts: the user, and when the token they act with was issued (seconds since the epoch; unknown without `iat`). */
export interface Actor {
  userId: string;
  issuedAt?: number;
}

/** What a token issued before its user's erasure gets, on every door. */
export const erasedAccount = () =>
  new GatewayError(ErrorCode.UNAUTHORIZED, 'this account was erased: tokens issued before that are refused; sign in again');

/**
 * The SQL condition "the user (row `u`) may act with a token issued at `issued`": never erased, or erased before
 * the token was issued (a new start). `issued` is a column or placeholder (a timestamptz, null when the token has
 * no `iat`), written twice: a placeholder there takes its value twice. The one place the rule is written.
 */
export const activeFor = (issued: string) => `(u.erased_at is null or (${issued} is not null and u.erased_at < ${issued}))`;

/** A token's `iat` as a timestamp PostgreSQL compares, or null. */
export const issuedAtParam = (issuedAt: number | undefined) => (issuedAt === undefined ? null : new Date(issuedAt * 1000).toISOString());

export function createUserService({ orm, audit }: ServiceDeps) {
  /**
   * Erases a user for good: their conversations (and with them their messages) are deleted, and their row stays as
   * a tombstone saying when, in the same transaction: tokens issued before that are refused from then on (see
   * assertActive), and nothing in flight with one can bring anything back. The row is updated, not deleted, so that a
   * write creating a conversation for the user (which locks the row) waits for the erasure and then sees it.
   * Idempotent.
   */
  async function erase(userId: string): Promise<void> {
    await orm.em.fork().transactional(async (tx) => {
      await tx.execute(
        'insert into users (id, created_at, erased_at) values (?, now(), now()) on conflict (id) do update set erased_at = excluded.erased_at',
        [userId],
      );
      await tx.execute('delete from conversations where user_id = ?', [userId]);
    });
    audit({ userId, op: 'user.erase', outcome: 'ok' });
  }

  /** Refuses a token issued before its user's erasure (checked when a token is presented: REST, handshake, refresh). */
  async function assertActive(actor: Actor): Promise<void> {
    const issued = issuedAtParam(actor.issuedAt);
    const rows = await orm.em
      .fork()
      .execute<{ id: string }[]>(`select u.id from users u where u.id = ? and not ${activeFor('?::timestamptz')}`, [
        actor.userId,
        issued,
        issued,
      ]);
    if (rows.length > 0) throw erasedAccount();
  }

  return { erase, assertActive };
}

export type UserService = ReturnType<typeof createUserService>;

/** A verifier that also refuses tokens issued before their user's erasure: what every door checks tokens with. */
export function refusingErased(verify: TokenVerifier, users: Pick<UserService, 'assertActive'>): TokenVerifier {
  return async (token) => {
    const identity = await verify(token);
    await users.assertActive(identity);
    return identity;
  };
}

/**
 * Users are created on their first write; nothing else creates them, and never a user erased after the token
 * acting for them was issued: then this throws the erased-account refusal.
 */
export async function ensureUser(em: Em, actor: Actor): Promise<void> {
  const issued = issuedAtParam(actor.issuedAt);
  // An upsert, not an insert: it waits for an erasure in progress and returns the row as it is after it, which a
  // plain read of this transaction could not see.
  const rows = await em.execute<{ id: string }[]>(
    `insert into users as u (id, created_at) values (?, now()) on conflict (id) do update set id = u.id
     returning u.id, ${activeFor('?::timestamptz')} as active`,
    [actor.userId, issued, issued],
  );
  if (!(rows[0] as { active?: boolean } | undefined)?.active) throw erasedAccount();
}
