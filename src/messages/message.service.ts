import { conversationFromRow } from '../conversations/conversation.dto.ts';
import { refusedAccess } from '../conversations/conversation.service.ts';
import type { ServiceDeps } from '../db/types.ts';
import { erasedAccount } from '../users/user.service.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Broadcast, Outcome } from '../shared/broadcast.ts';
import type { ConversationDto, MessageDto } from '../shared/events.ts';
import { createAppendBatcher, type BatcherOptions } from './append-batcher.ts';
import { replyKey } from './append-write.ts';
import { messageFromRow, toMessageDto } from './message.dto.ts';
import { MessageSchema, type MessageRole, type MessageStatus } from './message.entity.ts';

export interface AppendInput {
  /** Absent: a new conversation is started, titled from the content. */
  conversationId?: string | null;
  content: string;
  clientMessageId?: string | null;
  role?: MessageRole;
  status?: MessageStatus;
  metadata?: Record<string, unknown> | null;
  /** Store the assistant's streaming reply with the message, in the same transaction (see AppendRequest.reply). */
  reply?: { metadata: Record<string, unknown> };
  /** When the sender's token was issued (`iat`, seconds): a user erased since is not created again. */
  issuedAt?: number;
}

export interface AppendResult {
  message: MessageDto;
  /** The conversation as this message left it. */
  conversation: ConversationDto;
  /** True when the clientMessageId was seen before: nothing was stored, and nothing must be broadcast or answered. */
  duplicate: boolean;
  /** The reply stored with the message, when one was asked for (not on a repeat: see findReply). */
  reply?: MessageDto;
}

export interface HistoryQuery {
  before?: number;
  after?: number;
  limit: number;
}

const TITLE_FROM_CONTENT_CHARS = 80;
export const DEFAULT_BATCHING: BatcherOptions = { concurrency: 1, maxBatch: 256, maxQueued: 5000, timeoutMs: 5000 };

export function createMessageService({
  orm,
  log,
  audit,
  metrics,
  batching = DEFAULT_BATCHING,
}: ServiceDeps & { metrics: Metrics; batching?: BatcherOptions }) {
  const batcher = createAppendBatcher(orm, batching, (outcome) => metrics.appendBatches.inc({ outcome }));

  /**
   * Appends a message: the message, the conversation's last_seq and updated_at change in ONE transaction,
   * shared with the appends that arrive at the same moment (see append-batcher.ts). Resolves after the commit.
   */
  async function append(userId: string, input: AppendInput): Promise<Outcome<AppendResult>> {
    const result = await batcher.append({
      userId,
      conversationId: input.conversationId,
      newConversationTitle: input.conversationId ? null : titleFrom(input.content),
      content: input.content,
      clientMessageId: input.clientMessageId,
      role: input.role ?? 'user',
      status: input.status ?? 'complete',
      metadata: input.metadata ?? null,
      reply: input.reply,
      issuedAt: input.issuedAt,
    });
    if (result.kind === 'erased') throw erasedAccount();
    if (result.kind === 'not_found') throw refusedAccess({ log, audit }, userId, 'message.append', input.conversationId ?? '');
    const message = result.message;
    const conversation = result.conversation;
    if (result.kind === 'duplicate') {
      audit({ userId, op: 'message.append', outcome: 'duplicate', conversationId: conversation.id, messageId: message.id });
      return { data: { message, conversation, duplicate: true }, broadcasts: [] };
    }
    const reply = result.reply;
    metrics.messagesPersisted.inc({ role: message.role });
    if (reply) metrics.messagesPersisted.inc({ role: reply.role });
    audit({ userId, op: 'message.append', outcome: 'ok', conversationId: conversation.id, messageId: message.id, seq: message.seq });
    const broadcasts: Broadcast[] = [];
    if (result.conversationCreated) broadcasts.push({ userId, event: 'conversation:created', payload: { conversation } });
    broadcasts.push({ userId, event: 'message:created', payload: { message } });
    if (reply) broadcasts.push({ userId, event: 'message:created', payload: { message: reply } });
    return { data: { message, conversation, duplicate: false, reply }, broadcasts };
  }

  /**
   * Latest `limit` messages, or `limit` older than `before`, or the first `limit` newer than `after`,
   * always in ascending seq. `hasMore` says whether more exist in the direction of travel.
   */
  async function history(userId: string, conversationId: string, query: HistoryQuery, o: { audited?: boolean } = {}) {
    const forward = query.after !== undefined;
    const bounds: string[] = [];
    const params: unknown[] = [];
    if (query.before !== undefined) {
      bounds.push('and seq < ?');
      params.push(query.before);
    }
    if (query.after !== undefined) {
      bounds.push('and seq > ?');
      params.push(query.after);
    }
    // One round trip: the owner check and the page together, rows mapped straight to the wire shape (a read
    // path: no unit of work, no entities to build and collect). The page filters on the parameters, not on
    // c.id: the planner then sees which conversation it is, and walks the (conversation_id, seq) index
    // instead of sorting a long conversation whole.
    const rows = await orm.em.fork().execute<Record<string, unknown>[]>(
      `select c.id as c_id, c.title as c_title, c.last_seq as c_last_seq, c.created_at as c_created_at,
              c.updated_at as c_updated_at, m.*
       from conversations c
       left join lateral (
         select * from messages where conversation_id = ? and user_id = ? ${bounds.join(' ')}
         order by seq ${forward ? 'asc' : 'desc'} limit ?
       ) m on true
       where c.id = ? and c.user_id = ?`,
      [conversationId, userId, ...params, query.limit + 1, conversationId, userId],
    );
    if (rows.length === 0) throw refusedAccess({ log, audit }, userId, 'message.history', conversationId);
    const page = rows[0]!.id === null ? [] : rows;
    const hasMore = page.length > query.limit;
    const messages = page.slice(0, query.limit).map(messageFromRow);
    if (!forward) messages.reverse();
    // The gateway's own reads (an assistant reply's context) are not the user's: they are not audited as theirs.
    if (o.audited !== false) audit({ userId, op: 'message.history', outcome: 'ok', conversationId, count: messages.length });
    return { conversation: conversationFromRow(rows[0]!, 'c_'), messages, hasMore };
  }

  /** One of the user's messages as stored now; undefined when it is missing or someone else's. */
  async function find(userId: string, messageId: string): Promise<MessageDto | undefined> {
    const message = await orm.em.fork().findOne(MessageSchema, { id: messageId, userId });
    return message ? toMessageDto(message) : undefined;
  }

  /** The assistant's reply to one of the user's messages, as stored now. */
  async function findReply(userId: string, messageId: string): Promise<MessageDto | undefined> {
    const message = await orm.em.fork().findOne(MessageSchema, { userId, clientMessageId: replyKey(messageId) });
    return message ? toMessageDto(message) : undefined;
  }

  return { append, history, find, findReply, oldestWriteMs: batcher.oldestWriteMs, writesStalled: batcher.writesStalled };
}

export type MessageService = ReturnType<typeof createMessageService>;

function titleFrom(content: string): string {
  const oneLine = content.replace(/\s+/g, ' ').trim();
  if (oneLine.length <= TITLE_FROM_CONTENT_CHARS) return oneLine;
  // Cut between characters, not inside one: a high surrogate at the cut would leave half an emoji.
  const cut = oneLine.slice(0, TITLE_FROM_CONTENT_CHARS - 1).replace(/[\uD800-\uDBFF]$/, '');
  return `${cut}…`;
}
