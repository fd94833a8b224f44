import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { ConversationSchema, type Conversation } from '../conversations/conversation.entity.ts';
import { ensureUser, refusedAccess, type ServiceDeps } from '../conversations/conversation.service.ts';
import type { Em } from '../db/orm.ts';
import { audit } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Broadcast, Outcome } from '../shared/broadcast.ts';
import { toConversationDto, toMessageDto } from '../shared/dto.ts';
import type { ConversationDto, MessageDto } from '../shared/events.ts';
import { MessageSchema, type Message, type MessageRole, type MessageStatus } from './message.entity.ts';

export interface AppendInput {
  /** Absent: a new conversation is started, titled from the content. */
  conversationId?: string | null;
  content: string;
  clientMessageId?: string | null;
  role?: MessageRole;
  status?: MessageStatus;
  metadata?: Record<string, unknown> | null;
}

export interface AppendResult {
  message: MessageDto;
  conversation: ConversationDto;
  /** True when the clientMessageId was seen before: nothing was stored, and nothing must be broadcast or answered. */
  duplicate: boolean;
}

export interface HistoryQuery {
  before?: number;
  after?: number;
  limit: number;
}

const TITLE_FROM_CONTENT_CHARS = 80;

export function createMessageService({ orm, log, metrics }: ServiceDeps & { metrics: Metrics }) {
  /**
   * Appends a message: the message, the conversation's last_seq and updated_at change in ONE transaction.
   * The conversation row is locked by the UPDATE until commit, so concurrent appenders queue on it and
   * seq order is commit order, with no gap (a rolled-back append also rolls back its seq).
   */
  async function append(userId: string, input: AppendInput): Promise<Outcome<AppendResult>> {
    if (input.clientMessageId) {
      const stored = await findByClientMessageId(userId, input.clientMessageId);
      if (stored) return stored;
    }
    let result: { message: Message; conversation: Conversation; conversationCreated: boolean };
    try {
      result = await orm.em.fork().transactional((em) => insertMessage(em as Em, userId, input));
    } catch (err) {
      // A concurrent retry with the same clientMessageId committed first: answer with its message.
      if (err instanceof UniqueConstraintViolationException && input.clientMessageId) {
        const stored = await findByClientMessageId(userId, input.clientMessageId);
        if (stored) return stored;
      }
      throw err;
    }
    const message = toMessageDto(result.message);
    const conversation = toConversationDto(result.conversation);
    metrics.messagesPersisted.inc({ role: message.role });
    audit(log, { userId, op: 'message.append', outcome: 'ok', conversationId: conversation.id, messageId: message.id, seq: message.seq });
    const broadcasts: Broadcast[] = [];
    if (result.conversationCreated) broadcasts.push({ userId, event: 'conversation:created', payload: { conversation } });
    broadcasts.push({ userId, event: 'message:created', payload: { message } });
    return { data: { message, conversation, duplicate: false }, broadcasts };
  }

  async function insertMessage(em: Em, userId: string, input: AppendInput) {
    const now = new Date();
    let conversation: Conversation;
    let conversationCreated = false;
    if (input.conversationId) {
      const rows = await em.execute<Record<string, unknown>[]>(
        'update conversations set last_seq = last_seq + 1, updated_at = ? where id = ? and user_id = ? returning *',
        [now, input.conversationId, userId],
      );
      if (rows.length === 0) throw refusedAccess(log, userId, 'message.append', input.conversationId);
      conversation = em.map(ConversationSchema, rows[0]!);
    } else {
      await ensureUser(em, userId);
      conversation = em.create(ConversationSchema, {
        user: userId,
        title: titleFrom(input.content),
        lastSeq: 1,
        createdAt: now,
        updatedAt: now,
      });
      conversationCreated = true;
    }
    const message = em.create(MessageSchema, {
      conversation: conversation.id,
      userId,
      seq: Number(conversation.lastSeq),
      role: input.role ?? 'user',
      status: input.status ?? 'complete',
      content: input.content,
      metadata: input.metadata ?? null,
      clientMessageId: input.clientMessageId ?? null,
      createdAt: now,
      updatedAt: now,
    });
    await em.flush();
    return { message, conversation, conversationCreated };
  }

  async function findByClientMessageId(userId: string, clientMessageId: string): Promise<Outcome<AppendResult> | undefined> {
    const em = orm.em.fork();
    const message = await em.findOne(MessageSchema, { userId, clientMessageId });
    if (!message) return undefined;
    const conversation = await em.findOneOrFail(ConversationSchema, { id: message.conversation });
    audit(log, { userId, op: 'message.append', outcome: 'duplicate', conversationId: conversation.id, messageId: message.id });
    return { data: { message: toMessageDto(message), conversation: toConversationDto(conversation), duplicate: true }, broadcasts: [] };
  }

  /**
   * Latest `limit` messages, or `limit` older than `before`, or the first `limit` newer than `after`,
   * always in ascending seq. `hasMore` says whether more exist in the direction of travel.
   */
  async function history(userId: string, conversationId: string, query: HistoryQuery) {
    const em = orm.em.fork();
    const conversation = await em.findOne(ConversationSchema, { id: conversationId, user: userId });
    if (!conversation) throw refusedAccess(log, userId, 'history.get', conversationId);
    const seq: Record<string, number> = {};
    if (query.before !== undefined) seq.$lt = query.before;
    if (query.after !== undefined) seq.$gt = query.after;
    const forward = query.after !== undefined;
    const rows = await em.find(
      MessageSchema,
      { conversation: conversationId, userId, ...(Object.keys(seq).length ? { seq } : {}) },
      { orderBy: { seq: forward ? 'asc' : 'desc' }, limit: query.limit + 1 },
    );
    const hasMore = rows.length > query.limit;
    const page = rows.slice(0, query.limit);
    if (!forward) page.reverse();
    return { conversation: toConversationDto(conversation), messages: page.map(toMessageDto), hasMore };
  }

  /** Updates a message's text, status and metadata (the assistant's reply as it grows and ends). */
  async function update(
    userId: string,
    messageId: string,
    changes: { content?: string; status?: MessageStatus; metadata?: Record<string, unknown> | null },
    onlyIfStatus?: MessageStatus,
  ): Promise<MessageDto | undefined> {
    const em = orm.em.fork();
    const message = await em.findOne(MessageSchema, { id: messageId, userId, ...(onlyIfStatus ? { status: onlyIfStatus } : {}) });
    if (!message) return undefined;
    em.assign(message, { ...changes, updatedAt: new Date() });
    await em.flush();
    return toMessageDto(message);
  }

  return { append, history, update };
}

export type MessageService = ReturnType<typeof createMessageService>;

function titleFrom(content: string): string {
  const oneLine = content.replace(/\s+/g, ' ').trim();
  return oneLine.length <= TITLE_FROM_CONTENT_CHARS ? oneLine : `${oneLine.slice(0, TITLE_FROM_CONTENT_CHARS - 1)}…`;
}
