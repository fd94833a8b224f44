import { DeadlockException, LockWaitTimeoutException, UniqueConstraintViolationException } from '@mikro-orm/core';
import { ConversationSchema, type Conversation } from '../conversations/conversation.entity.ts';
import { ensureUsers } from '../conversations/conversation.service.ts';
import { isDatabaseUnavailable } from '../db/errors.ts';
import { conversationFromRow, toConversationDto } from '../shared/dto.ts';
import { ErrorCode, GatewayError } from '../shared/errors.ts';
import type { ConversationDto } from '../shared/events.ts';
import type { Em, Orm } from '../db/orm.ts';
import { MessageSchema, type Message, type MessageRole, type MessageStatus } from './message.entity.ts';

export interface AppendRequest {
  userId: string;
  /** Absent: a new conversation is started with this title. */
  conversationId?: string | null;
  newConversationTitle: string;
  content: string;
  clientMessageId?: string | null;
  role: MessageRole;
  status: MessageStatus;
  metadata: Record<string, unknown> | null;
}

/** A message already stored under an idempotency key, with its conversation. */
type StoredAppend = { message: Message; conversation: ConversationDto };

/** The conversation comes in its wire shape, as the batch left it. */
export type Appended =
  | { kind: 'stored'; message: Message; conversation: ConversationDto; conversationCreated: boolean }
  | ({ kind: 'duplicate' } & StoredAppend)
  | { kind: 'not_found' };

interface Pending {
  request: AppendRequest;
  resolve: (result: Appended) => void;
  reject: (err: unknown) => void;
}

export interface BatcherOptions {
  /** Transactions in flight at once; each takes every append queued when it starts. */
  concurrency: number;
  /** Most appends in one transaction. */
  maxBatch: number;
  /** Most appends waiting for a transaction; past it a send is refused at once rather than queued for seconds. */
  maxQueued: number;
}

const MAX_ATTEMPTS = 4;

/**
 * Group commit: appends that arrive while earlier ones are committing are written together, in ONE
 * transaction (one unit of work): one multi-row insert, one seq update per conversation. Every append still
 * gets its result only after the commit that made it durable, so ack-after-commit holds. Under light load a
 * batch is a single append and nothing waits; under heavy load batches grow and commits are shared.
 *
 * Seq: handed out under the conversation row's lock (see reserveSeqs), so seq order is commit order and a
 * rolled-back batch leaves no gap.
 * Idempotency: the same key twice in one batch is written once; a key already stored (or committed by another
 * node meanwhile) makes the insert fail on the unique index, and the batch is retried looking its keys up, so
 * those appends answer with the stored message.
 */
export function createAppendBatcher(orm: Orm, options: BatcherOptions) {
  const queue: Pending[] = [];
  let inFlight = 0;

  function append(request: AppendRequest): Promise<Appended> {
    if (queue.length >= options.maxQueued) {
      // Overloaded: a client waiting past its ack timeout would retry on top of the backlog.
      return Promise.reject(new GatewayError(ErrorCode.UNAVAILABLE, 'the gateway is overloaded; retry shortly', { retryAfterMs: 1000 }));
    }
    return new Promise((resolve, reject) => {
      queue.push({ request, resolve, reject });
      pump();
    });
  }

  function pump() {
    while (inFlight < options.concurrency && queue.length > 0) {
      const batch = queue.splice(0, options.maxBatch);
      inFlight++;
      void commit(batch).finally(() => {
        inFlight--;
        pump();
      });
    }
  }

  async function commit(batch: Pending[]) {
    // Optimistic about idempotency keys: retries are rare, so a batch first writes without looking them up.
    // A key already stored makes the insert fail on the unique index; the batch then rolls back and is
    // written again, looking its keys up first. One round trip less per batch in the usual case.
    let lookUpKeys = false;
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await attemptBatch(batch.map((p) => p.request), lookUpKeys);
        batch.forEach((p, i) => p.resolve(results[i]!));
        return;
      } catch (err) {
        const retryable =
          err instanceof UniqueConstraintViolationException || err instanceof DeadlockException || err instanceof LockWaitTimeoutException;
        if (err instanceof UniqueConstraintViolationException) lookUpKeys = true;
        if (retryable && attempt < MAX_ATTEMPTS) continue;
        if (batch.length > 1 && !isDatabaseUnavailable(err)) {
          // One append's failure must not fail the others: commit each on its own, so only the culprit fails.
          await Promise.all(batch.map((p) => commit([p])));
        } else {
          for (const p of batch) p.reject(err);
        }
        return;
      }
    }
  }

  async function attemptBatch(requests: AppendRequest[], lookUpKeys: boolean): Promise<Appended[]> {
    const em = orm.em.fork();
    const results: (Appended | undefined)[] = new Array(requests.length);
    const stored = lookUpKeys ? await findStored(em, requests) : new Map<string, StoredAppend>();

    // The first request of each key writes; the others answer with what it wrote.
    const leaders = new Map<string, number>();
    const followers: [index: number, leader: number][] = [];
    const toWrite: number[] = [];
    requests.forEach((r, i) => {
      const key = keyOf(r);
      const existing = key ? stored.get(key) : undefined;
      if (existing) {
        results[i] = { kind: 'duplicate', ...existing };
      } else if (key && leaders.has(key)) {
        followers.push([i, leaders.get(key)!]);
      } else {
        if (key) leaders.set(key, i);
        toWrite.push(i);
      }
    });

    if (toWrite.length > 0) {
      // The batch's own fork is the unit of work: begin, write, commit (which flushes it). em.transactional would
      // fork again and merge the result back into this fork, which is thrown away: about 15% more CPU per batch.
      await em.begin();
      try {
        await writeBatch(em, requests, toWrite, results);
        await em.commit();
      } catch (err) {
        // The write's own error decides what happens next (retry, split, UNAVAILABLE), not a failed rollback's.
        await em.rollback().catch(() => undefined);
        throw err;
      }
    }
    for (const [i, leader] of followers) {
      const first = results[leader]!;
      results[i] = first.kind === 'stored' ? { kind: 'duplicate', message: first.message, conversation: first.conversation } : first;
    }
    return results as Appended[];
  }

  async function writeBatch(tx: Em, requests: AppendRequest[], toWrite: number[], results: (Appended | undefined)[]) {
    const now = new Date();
    const newOnes = toWrite.filter((i) => !requests[i]!.conversationId);
    const existingIds = [...new Set(toWrite.map((i) => requests[i]!.conversationId).filter((id): id is string => Boolean(id)))].sort();

    // Users first, then conversations, each in sorted order: a fixed lock order across all batches.
    await ensureUsers(tx, newOnes.map((i) => requests[i]!.userId));
    const reserved = await reserveSeqs(tx, requests, toWrite, existingIds, now);

    const pendingMessages: [index: number, message: Message, conversation: ConversationDto][] = [];
    const created = new Set<number>();
    for (const i of toWrite) {
      const r = requests[i]!;
      let conversation: ConversationDto;
      let seq: number;
      if (r.conversationId) {
        const slot = reserved.get(r.conversationId);
        // Another user's conversation is the same as a missing one.
        if (!slot || slot.userId !== r.userId) {
          results[i] = { kind: 'not_found' };
          continue;
        }
        seq = ++slot.lastSeq;
        conversation = slot.conversation;
      } else {
        const newConversation: Conversation = tx.create(ConversationSchema, {
          user: r.userId,
          title: r.newConversationTitle,
          lastSeq: 1,
          createdAt: now,
          updatedAt: now,
        });
        conversation = toConversationDto(newConversation);
        created.add(i);
        seq = 1;
      }
      const message = tx.create(MessageSchema, {
        conversation: conversation.id,
        userId: r.userId,
        seq,
        role: r.role,
        status: r.status,
        content: r.content,
        metadata: r.metadata,
        clientMessageId: r.clientMessageId ?? null,
        createdAt: now,
        updatedAt: now,
      });
      pendingMessages.push([i, message, conversation]);
    }
    // Written by the commit's flush: one multi-row insert.

    for (const [i, message, conversation] of pendingMessages) {
      results[i] = { kind: 'stored', message, conversation, conversationCreated: created.has(i) };
    }
  }

  /**
   * Hands out seqs: bumps each existing conversation's last_seq by the number of its appends in this batch
   * (its owner's only) and returns, per conversation, its owner, the seq before the batch and the updated row in
   * its wire shape: nothing of it is written again, so it is not mapped into the unit of work (which took
   * about 40 µs of CPU per batch, and more at flush).
   * The UPDATE's row lock is held until commit, so concurrent batches queue and seq order is commit order.
   * One conversation, one owner (the usual batch): a single UPDATE. Several: their rows are locked first, in
   * id order, so batches of different nodes cannot deadlock.
   */
  async function reserveSeqs(tx: Em, requests: AppendRequest[], toWrite: number[], ids: string[], now: Date) {
    const reserved = new Map<string, { userId: string; lastSeq: number; conversation: ConversationDto }>();
    if (ids.length === 0) return reserved;
    const appendsBy = (id: string, owner: string) => toWrite.filter((i) => requests[i]!.conversationId === id && requests[i]!.userId === owner).length;
    const owners = new Set(toWrite.filter((i) => requests[i]!.conversationId).map((i) => requests[i]!.userId));
    let counts: { id: string; userId: string; n: number }[];
    if (ids.length === 1 && owners.size === 1) {
      const userId = [...owners][0]!;
      counts = [{ id: ids[0]!, userId, n: appendsBy(ids[0]!, userId) }];
    } else {
      const rows = await tx.execute<{ id: string; user_id: string }[]>(
        `select id, user_id from conversations
         where id in (select value::uuid from jsonb_array_elements_text(?::jsonb)) order by id for update`,
        [JSON.stringify(ids)],
      );
      counts = rows.map((row) => ({ id: row.id, userId: row.user_id, n: appendsBy(row.id, row.user_id) })).filter((c) => c.n > 0);
    }
    if (counts.length === 0) return reserved;
    const rows = await tx.execute<Record<string, unknown>[]>(
      `update conversations c set last_seq = c.last_seq + v.n, updated_at = ?
       from jsonb_to_recordset(?::jsonb) as v(id uuid, user_id varchar, n bigint)
       where c.id = v.id and c.user_id = v.user_id returning c.*`,
      [now, JSON.stringify(counts.map((c) => ({ id: c.id, user_id: c.userId, n: c.n })))],
    );
    for (const row of rows) {
      const conversation = conversationFromRow(row);
      const n = counts.find((c) => c.id === conversation.id)!.n;
      reserved.set(conversation.id, { userId: String(row.user_id), lastSeq: conversation.lastSeq - n, conversation });
    }
    return reserved;
  }

  /** Messages already stored under the batch's idempotency keys, with their conversations. */
  async function findStored(em: Em, requests: AppendRequest[]) {
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
    const messages = rows.map((row) => em.map(MessageSchema, row));
    const conversations = await em.find(ConversationSchema, { id: { $in: [...new Set(messages.map((m) => m.conversation))] } });
    const byId = new Map(conversations.map((c) => [c.id, c]));
    for (const message of messages) {
      found.set(`${message.userId}\u0000${message.clientMessageId}`, { message, conversation: toConversationDto(byId.get(message.conversation)!) });
    }
    return found;
  }

  return { append };
}

function keyOf(r: AppendRequest): string | undefined {
  return r.clientMessageId ? `${r.userId}\u0000${r.clientMessageId}` : undefined;
}

export type AppendBatcher = ReturnType<typeof createAppendBatcher>;
