import type { ServiceDeps } from '../db/types.ts';
import type { Audit } from '../observability/audit.ts';
import type { Logger } from '../observability/logger.ts';
import type { Outcome } from '../shared/broadcast.ts';
import { ErrorCode, GatewayError, notFound } from '../shared/errors.ts';
import type { ConversationDto } from '../shared/events.ts';
import { ensureUser } from '../users/user.service.ts';
import { toConversationDto } from './conversation.dto.ts';
import { ConversationSchema, type Conversation } from './conversation.entity.ts';

/** Conversations of one user: every operation is its own unit of work on a fresh fork. */
export function createConversationService({ orm, log, audit }: ServiceDeps) {
  async function get(userId: string, conversationId: string): Promise<ConversationDto> {
    const em = orm.em.fork();
    // Owner in the filter: another user's conversation and a missing one are the same NOT_FOUND.
    const conversation = await em.findOne(ConversationSchema, { id: conversationId, user: userId });
    if (!conversation) throw refusedAccess({ log, audit }, userId, 'conversation.get', conversationId);
    audit({ userId, op: 'conversation.get', outcome: 'ok', conversationId });
    return toConversationDto(conversation);
  }

  /**
   * A new conversation; or, with `reuse: 'latest'` (get-or-create), the user's most recently updated one when they
   * have any. Get-or-create takes a lock per user for its transaction, so that two tabs asking at once end with one
   * conversation, not two.
   */
  async function create(
    userId: string,
    input: { title?: string | null; reuse?: 'latest' },
    /** When the acting token was issued (`iat`): an erased user is never created again by an older one. */
    issuedAt?: number,
  ): Promise<Outcome<{ conversation: ConversationDto; created: boolean }>> {
    const em = orm.em.fork();
    const { conversation, created } = await em.transactional(async (tx) => {
      if (input.reuse === 'latest') {
        await tx.execute("select pg_advisory_xact_lock(hashtextextended('chat:get-or-create:' || ?, 0))", [userId]);
        const latest = await tx.findOne(ConversationSchema, { user: userId }, { orderBy: { updatedAt: 'desc', id: 'desc' } });
        if (latest) return { conversation: latest, created: false };
      }
      await ensureUser(tx, { userId, issuedAt });
      const now = new Date();
      const c = tx.create(ConversationSchema, { user: userId, title: input.title ?? null, lastSeq: 0, createdAt: now, updatedAt: now });
      await tx.flush();
      return { conversation: c, created: true };
    });
    const dto = toConversationDto(conversation);
    audit({ userId, op: created ? 'conversation.create' : 'conversation.reuse', outcome: 'ok', conversationId: dto.id });
    const broadcasts: Outcome<unknown>['broadcasts'] = created
      ? [{ userId, event: 'conversation:created', payload: { conversation: dto } }]
      : [];
    return { data: { conversation: dto, created }, broadcasts };
  }

  async function list(userId: string, input: { limit: number; cursor?: string | null }) {
    const em = orm.em.fork();
    const after = input.cursor ? decodeCursor(input.cursor) : undefined;
    const rows = await em.find(
      ConversationSchema,
      after
        ? {
            user: userId,
            $or: [{ updatedAt: { $lt: after.updatedAt } }, { updatedAt: after.updatedAt, id: { $lt: after.id } }],
          }
        : { user: userId },
      // id breaks ties between equal timestamps, so a page boundary never skips or repeats one.
      { orderBy: { updatedAt: 'desc', id: 'desc' }, limit: input.limit + 1 },
    );
    const page = rows.slice(0, input.limit);
    const nextCursor = rows.length > input.limit ? encodeCursor(page[page.length - 1]!) : null;
    audit({ userId, op: 'conversation.list', outcome: 'ok', count: page.length });
    return { conversations: page.map(toConversationDto), nextCursor };
  }

  async function rename(
    userId: string,
    input: { conversationId: string; title: string | null },
  ): Promise<Outcome<{ conversation: ConversationDto }>> {
    const em = orm.em.fork();
    const conversation = await em.findOne(ConversationSchema, { id: input.conversationId, user: userId });
    if (!conversation) throw refusedAccess({ log, audit }, userId, 'conversation.rename', input.conversationId);
    conversation.title = input.title;
    conversation.updatedAt = new Date();
    await em.flush();
    const dto = toConversationDto(conversation);
    audit({ userId, op: 'conversation.rename', outcome: 'ok', conversationId: dto.id });
    return { data: { conversation: dto }, broadcasts: [{ userId, event: 'conversation:updated', payload: { conversation: dto } }] };
  }

  async function remove(userId: string, input: { conversationId: string }): Promise<Outcome<{ conversationId: string }>> {
    const em = orm.em.fork();
    // Messages go with it through ON DELETE CASCADE.
    const deleted = await em.nativeDelete(ConversationSchema, { id: input.conversationId, user: userId });
    if (deleted === 0) throw refusedAccess({ log, audit }, userId, 'conversation.delete', input.conversationId);
    audit({ userId, op: 'conversation.delete', outcome: 'ok', conversationId: input.conversationId });
    const payload = { conversationId: input.conversationId };
    return { data: payload, broadcasts: [{ userId, event: 'conversation:deleted', payload }] };
  }

  return { get, create, list, rename, remove };
}

export type ConversationService = ReturnType<typeof createConversationService>;

/** Logs a refused or missing access (it may be a probe of another user's ids) and returns the NOT_FOUND to throw. */
export function refusedAccess(d: { log: Logger; audit: Audit }, userId: string, op: string, conversationId: string): GatewayError {
  d.log.warn({ userId, op, conversationId }, "access to a conversation that is missing or not the user's");
  d.audit({ userId, op, outcome: 'not_found', conversationId });
  return notFound('conversation');
}

function encodeCursor(c: Conversation): string {
  return Buffer.from(`${c.updatedAt.toISOString()}|${c.id}`).toString('base64url');
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function decodeCursor(cursor: string): { updatedAt: Date; id: string } {
  const [time, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  const updatedAt = new Date(time ?? '');
  if (!id || !UUID.test(id) || Number.isNaN(updatedAt.getTime())) {
    throw new GatewayError(ErrorCode.VALIDATION, 'cursor is not one this server issued');
  }
  return { updatedAt, id };
}
