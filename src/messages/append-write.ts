import { v7 as uuidv7 } from 'uuid';
import { conversationFromRow, toConversationDto } from '../conversations/conversation.dto.ts';
import { ConversationSchema } from '../conversations/conversation.entity.ts';
import { preparedStatement, runPrepared } from '../db/prepared.ts';
import type { Em } from '../db/types.ts';
import type { ConversationDto, MessageDto } from '../shared/events.ts';
import { activeFor, issuedAtParam } from '../users/user.service.ts';
import { messageFromRow } from './message.dto.ts';
import type { MessageRole, MessageStatus } from './message.entity.ts';

// One batch's write: the statement that stores it, and what it answers each append. The queue, the retries and the
// write bound around it are in append-batcher.ts.

export interface AppendRequest {
  userId: string;
  /** Absent: a new conversation is started, titled `newConversationTitle`. */
  conversationId?: string | null;
  newConversationTitle: string | null;
  content: string;
  clientMessageId?: string | null;
  role: MessageRole;
  status: MessageStatus;
  metadata: Record<string, unknown> | null;
  /**
   * Also store the assistant's reply to this message, right after it (the next seq), in the same statement: status
   * `streaming`, no text yet, and `assistant:<message id>` as its idempotency key. Acknowledged with the message,
   * so no acknowledged message is ever without its reply, whatever fails afterwards.
   */
  reply?: { metadata: Record<string, unknown> };
  /** When the token of the sender was issued (`iat`, seconds): a user erased since is not created again. */
  issuedAt?: number;
}

/** A message already stored under an idempotency key, with its conversation. */
export type StoredAppend = { message: MessageDto; conversation: ConversationDto };

/** The message and its conversation come in their wire shape, as the batch left them. */
export type Appended =
  | { kind: 'stored'; message: MessageDto; conversation: ConversationDto; conversationCreated: boolean; reply?: MessageDto }
  | ({ kind: 'duplicate' } & StoredAppend)
  | { kind: 'not_found' }
  | { kind: 'erased' };

/** One message of a batch as APPEND reads it; `place` is its rank among its conversation's appends. */
interface MessageRow {
  id: string;
  conversation_id: string;
  user_id: string;
  place: number;
  is_new: boolean;
  role: MessageRole;
  status: MessageStatus;
  content: string;
  metadata: Record<string, unknown> | null;
  client_message_id: string | null;
}

/**
 * A whole batch in one statement, so one transaction: PostgreSQL runs every part of a WITH or none.
 * $1: existing conversations with their claimed owner and count of appends; $2: the time; $3: new conversations;
 * $4: the messages.
 * 0. repeated: an idempotency key of the batch that is already stored, looked up key by key in the unique index (with
 *    a join, the plan PostgreSQL keeps for the statement, made while the table was small, could read it whole: 7
 *    times slower at 50,000 messages). Then the statement writes nothing at all (every write below is conditioned
 *    on there being none) and says so; the batch is written again with that append answered as a repeat. A repeat thus costs the others of its batch one more round trip, not a
 *    failed, rolled-back transaction.
 * 1. counts → locked → bumped: each existing conversation (matched on id AND owner, so another user's is left
 *    alone) is locked in id order, so that batches of different nodes cannot deadlock, and its last_seq moves
 *    past its appends. The lock is held until the statement commits: seq order is commit order.
 *    Its updated_at never moves back: $2 is taken before the lock is granted, so a batch that waited for another
 *    node's (or ran on a node whose clock is behind) commits the later seqs with the earlier time. Clients order
 *    versions of a conversation by updatedAt (and take a message's createdAt as its conversation's updatedAt when
 *    that is later): a time going back would leave their lists on a stale lastSeq for good.
 * 2. users → created: owners (in id order), and conversations of appends that start one (seq 1, and 2 for the
 *    reply stored with it) — but only for a user not erased since the sender's token was issued (an append may have
 *    been in flight when its user was erased). The owners are upserted, not only inserted: an upsert waits for an
 *    erasure (or another batch making the same user) in progress and then returns the row as it is now, which
 *    this statement could not otherwise see. Appends whose new conversation was not created are not written.
 * 3. inserted: one multi-row insert; an existing conversation's k-th append takes seq (last_seq before) + k.
 *    Appends whose conversation was not bumped (missing, or not the user's) are not written.
 * It returns the bumped rows, with how many appends each took (n), and the created conversations' ids, or one row
 * of kind `repeated`. The columns are
 * named, not `*`: a column that a later migration adds must not change the result of a statement that connections
 * of running nodes have prepared (PostgreSQL refuses it: "cached plan must not change result type").
 */
const APPEND = preparedStatement(
  'chat_append_batch_v8',
  `with rows as (
    select * from jsonb_to_recordset($4::jsonb) as m(id uuid, conversation_id uuid, user_id varchar, place bigint, is_new boolean,
           role text, status text, content text, metadata jsonb, client_message_id varchar)
  ), repeated as (
    select 1 from rows m, lateral (
      select from messages e where e.user_id = m.user_id and e.client_message_id = m.client_message_id limit 1
    ) e limit 1
  ), counts as (
    select * from jsonb_to_recordset($1::jsonb) as v(id uuid, user_id varchar, n bigint) where not exists (select from repeated)
  ), locked as (
    select c.id, v.n from conversations c join counts v on v.id = c.id and v.user_id = c.user_id
    order by c.id for update of c
  ), bumped as (
    update conversations c set last_seq = c.last_seq + l.n, updated_at = greatest(c.updated_at, $2::timestamptz)
    from locked l where c.id = l.id
    returning c.id, c.user_id, c.title, c.last_seq, c.created_at, c.updated_at, l.n
  ), starts as (
    select * from jsonb_to_recordset($3::jsonb) as v(id uuid, user_id varchar, title varchar, n bigint, issued_at timestamptz)
    where not exists (select from repeated)
  ), owners as (
    insert into users as u (id, created_at)
    select distinct v.user_id, $2::timestamptz from starts v order by 1
    on conflict (id) do update set id = u.id
    returning u.id, u.erased_at
  ), created as (
    insert into conversations (id, user_id, title, last_seq, created_at, updated_at)
    select v.id, v.user_id, v.title, v.n, $2::timestamptz, $2::timestamptz from starts v join owners u on u.id = v.user_id
    where ${activeFor('v.issued_at')}
    returning id
  ), inserted as (
    insert into messages (id, conversation_id, user_id, seq, role, status, content, metadata, client_message_id, created_at, updated_at)
    select m.id, m.conversation_id, m.user_id, coalesce(b.last_seq - b.n, 0) + m.place, m.role, m.status, m.content,
           m.metadata, m.client_message_id, $2::timestamptz, $2::timestamptz
    from rows m left join bumped b on b.id = m.conversation_id and b.user_id = m.user_id
    where (b.id is not null or m.conversation_id in (select id from created)) and not exists (select from repeated)
  )
  select 'bumped' as kind, id, user_id, title, last_seq, created_at, updated_at, n from bumped
  union all
  select 'created', id, null, null, null, null, null, null from created
  union all
  select 'repeated', null, null, null, null, null, null, null from repeated`,
);

/** A batch that met an idempotency key already stored, and so wrote nothing. */
export class RepeatedKey extends Error {}

/**
 * Writes the batch in ONE statement (see APPEND): one round trip, and one transaction without a BEGIN or a
 * COMMIT to wait for. Ids, seq offsets and timestamps are decided here, so only the conversations' rows come back.
 */
export async function writeBatch(em: Em, requests: AppendRequest[], toWrite: number[], results: (Appended | undefined)[]) {
  const now = new Date();
  // Per conversation and claimed owner: how many messages it gets; each message's place among them makes its seq.
  const counts = new Map<string, { id: string; user_id: string; n: number }>();
  const newConversations: { id: string; user_id: string; title: string | null; n: number; issued_at: string | null }[] = [];
  const rows: MessageRow[] = [];
  /** Per request written: its message row, and its reply's, if it asked for one. */
  const written: { row: MessageRow; reply?: MessageRow }[] = [];
  for (const i of toWrite) {
    const r = requests[i]!;
    const messages = r.reply ? 2 : 1;
    // PostgreSQL answers with lower-case ids and the batch matches its answer on them. Sockets and REST lower ids
    // as they validate them; callers inside the gateway may not.
    let conversationId = r.conversationId?.toLowerCase();
    let place = 1;
    if (conversationId) {
      const key = ownedKey(conversationId, r.userId);
      const count = counts.get(key) ?? { id: conversationId, user_id: r.userId, n: 0 };
      counts.set(key, count);
      place = count.n + 1;
      count.n += messages;
    } else {
      conversationId = uuidv7();
      newConversations.push({
        id: conversationId,
        user_id: r.userId,
        title: r.newConversationTitle,
        n: messages,
        issued_at: issuedAtParam(r.issuedAt),
      });
    }
    const common = { conversation_id: conversationId, user_id: r.userId, is_new: !r.conversationId };
    const row: MessageRow = {
      ...common,
      id: uuidv7(),
      place,
      role: r.role,
      status: r.status,
      content: r.content,
      metadata: r.metadata,
      client_message_id: r.clientMessageId ?? null,
    };
    const reply: MessageRow | undefined = r.reply && {
      ...common,
      id: uuidv7(),
      place: place + 1,
      role: 'assistant',
      status: 'streaming',
      content: '',
      metadata: { ...r.reply.metadata, replyToId: row.id },
      client_message_id: replyKey(row.id),
    };
    rows.push(row, ...(reply ? [reply] : []));
    written.push({ row, reply });
  }

  const returned = await runPrepared<Record<string, unknown>>(em, APPEND, [
    toJson([...counts.values()]),
    now,
    toJson(newConversations),
    toJson(rows),
  ]);

  if (returned.some((row) => row.kind === 'repeated')) throw new RepeatedKey();
  const created = new Set(returned.filter((row) => row.kind === 'created').map((row) => String(row.id)));
  // Only the rows the batch may write to came back: the claimed owner is the owner.
  const bumpedBy = new Map<string, { conversation: ConversationDto; seqBefore: number }>();
  for (const row of returned) {
    if (row.kind !== 'bumped') continue;
    const conversation = conversationFromRow(row);
    bumpedBy.set(ownedKey(conversation.id, String(row.user_id)), { conversation, seqBefore: conversation.lastSeq - Number(row.n) });
  }
  toWrite.forEach((i, k) => {
    const { row, reply } = written[k]!;
    let conversation: ConversationDto;
    let seqBefore = 0;
    if (row.is_new && !created.has(row.conversation_id)) {
      results[i] = { kind: 'erased' };
      return;
    }
    if (row.is_new) {
      const title = requests[i]!.newConversationTitle;
      conversation = conversationFromRow({ id: row.conversation_id, title, created_at: now, updated_at: now });
    } else {
      const found = bumpedBy.get(ownedKey(row.conversation_id, row.user_id));
      // Another user's conversation is the same as a missing one.
      if (!found) {
        results[i] = { kind: 'not_found' };
        return;
      }
      conversation = found.conversation;
      seqBefore = found.seqBefore;
    }
    const stored = (r: MessageRow) => messageFromRow({ ...r, seq: seqBefore + r.place, created_at: now, updated_at: now });
    const message = stored(row);
    // The conversation as this message left it: a reply, or a later message of the same batch, comes after it.
    results[i] = {
      kind: 'stored',
      message,
      conversation: { ...conversation, lastSeq: message.seq },
      conversationCreated: row.is_new,
      reply: reply && stored(reply),
    };
  });
}

/** Messages already stored under the batch's idempotency keys, with their conversations. */
export async function findStored(em: Em, requests: AppendRequest[]) {
  const found = new Map<string, StoredAppend>();
  const keyed = requests.filter((r) => r.clientMessageId);
  if (keyed.length === 0) return found;
  const rows = await em.execute<Record<string, unknown>[]>(
    // A VALUES list rather than one JSON parameter: the planner then knows how few keys there are and uses
    // the (user_id, client_message_id) index even while the table is small.
    `select m.* from messages m join (values ${keyed.map(() => '(?::varchar, ?::varchar)').join(', ')}) as k(user_id, client_message_id)
       on m.user_id = k.user_id and m.client_message_id = k.client_message_id`,
    keyed.flatMap((r) => [r.userId, r.clientMessageId]),
  );
  if (rows.length === 0) return found;
  // Rows straight to the wire shape, as writeBatch answers: nothing here is written again.
  const messages = rows.map(messageFromRow);
  const conversations = await em.find(ConversationSchema, { id: { $in: [...new Set(messages.map((m) => m.conversationId))] } });
  const byId = new Map(conversations.map((c) => [c.id, toConversationDto(c)]));
  rows.forEach((row, k) => {
    const message = messages[k]!;
    found.set(pairKey(String(row.user_id), message.clientMessageId!), { message, conversation: byId.get(message.conversationId)! });
  });
  return found;
}

/**
 * JSON for a jsonb parameter. A lone UTF-16 surrogate (half an emoji) is valid in a JS string but not in jsonb,
 * which would refuse the whole batch; like pg does for a text parameter, it becomes U+FFFD.
 */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'string' ? v.toWellFormed() : v));
}

/** The idempotency key of the assistant's reply to a message: one reply per message, whatever retries happen. */
export const replyKey = (messageId: string) => `assistant:${messageId}`;

/** One map key for two ids; NUL appears in neither. */
function pairKey(a: string, b: string): string {
  return `${a}\u0000${b}`;
}

/** A conversation as claimed by one user: the batch counts, and matches PostgreSQL's answer, per claim. */
function ownedKey(conversationId: string, userId: string): string {
  return pairKey(conversationId, userId);
}

/** An append's idempotency key, as findStored files what it finds. */
export function keyOf(r: AppendRequest): string | undefined {
  return r.clientMessageId ? pairKey(r.userId, r.clientMessageId) : undefined;
}
