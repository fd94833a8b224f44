import { DeadlockException, LockWaitTimeoutException, UniqueConstraintViolationException } from '@mikro-orm/core';
import { ConversationSchema, type Conversation } from '../conversations/conversation.entity.ts';
import { isDatabaseUnavailable } from '../db/errors.ts';
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

export type Appended =
  | { kind: 'stored'; message: Message; conversation: Conversation; conversationCreated: boolean }
  | { kind: 'duplicate'; message: Message; conversation: Conversation }
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
}

const MAX_ATTEMPTS = 4;

/**
 * Group commit: appends that arrive while earlier ones are committing are written together, in ONE
 * transaction (one unit of work): one multi-row insert, one seq update per conversation. Every append still
 * gets its result only after the commit that made it durable, so ack-after-commit holds. Under light load a
 * batch is a single append and nothing waits; under heavy load batches grow and commits are shared.
 *
 * Seq: conversation rows are locked (FOR UPDATE, in id order so batches on different nodes cannot deadlock)
 * before seqs are handed out, so seq order is commit order and a rolled-back batch leaves no gap.
 * Idempotency: keys already stored answer with the stored message; the same key twice in one batch is written
 * once; a key committed by another node in between makes the insert fail, and the batch is retried.
 */
export function createAppendBatcher(orm: Orm, options: BatcherOptions) {
  const queue: Pending[] = [];
  let inFlight = 0;

  function append(request: AppendRequest): Promise<Appended> {
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
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await attemptBatch(batch.map((p) => p.request));
        batch.forEach((p, i) => p.resolve(results[i]!));
        return;
      } catch (err) {
        const retryable =
          err instanceof UniqueConstraintViolationException || err instanceof DeadlockException || err instanceof LockWaitTimeoutException;
        if (retryable && attempt < MAX_ATTEMPTS) continue;
        if (batch.length > 1 && !isDatabaseUnavailable(err)) {
          // One append's failure must not fail the others: commit each on its own, so only the culprit fails.
          await Promise.all(batch.map((p) => commit([p])));
        } else {
          batch[0]!.reject(err);
        }
        return;
      }
    }
  }

  async function attemptBatch(requests: AppendRequest[]): Promise<Appended[]> {
    const em = orm.em.fork();
    const results: (Appended | undefined)[] = new Array(requests.length);
    const stored = await findStored(em, requests);

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
      await em.transactional(async (tx) => writeBatch(tx as Em, requests, toWrite, results));
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
    const newUsers = [...new Set(newOnes.map((i) => requests[i]!.userId))].sort();
    if (newUsers.length) {
      await tx.execute(
        'insert into users (id, created_at) select id, now() from jsonb_array_elements_text(?::jsonb) as u(id) on conflict (id) do nothing',
        [JSON.stringify(newUsers)],
      );
    }
    const locked = new Map<string, { userId: string; lastSeq: number }>();
    if (existingIds.length) {
      const rows = await tx.execute<{ id: string; user_id: string; last_seq: string | number }[]>(
        `select id, user_id, last_seq from conversations
         where id in (select value::uuid from jsonb_array_elements_text(?::jsonb)) order by id for update`,
        [JSON.stringify(existingIds)],
      );
      for (const row of rows) locked.set(row.id, { userId: row.user_id, lastSeq: Number(row.last_seq) });
    }

    const pendingMessages: [index: number, message: Message, conversationId: string][] = [];
    const created = new Map<number, Conversation>();
    for (const i of toWrite) {
      const r = requests[i]!;
      let conversationId: string;
      let seq: number;
      if (r.conversationId) {
        const conversation = locked.get(r.conversationId);
        // Another user's conversation is the same as a missing one.
        if (!conversation || conversation.userId !== r.userId) {
          results[i] = { kind: 'not_found' };
          continue;
        }
        seq = ++conversation.lastSeq;
        conversationId = r.conversationId;
      } else {
        const conversation = tx.create(ConversationSchema, {
          user: r.userId,
          title: r.newConversationTitle,
          lastSeq: 1,
          createdAt: now,
          updatedAt: now,
        });
        created.set(i, conversation);
        seq = 1;
        conversationId = conversation.id;
      }
      const message = tx.create(MessageSchema, {
        conversation: conversationId,
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
      pendingMessages.push([i, message, conversationId]);
    }

    const touched = [...locked.entries()].filter(([id]) => pendingMessages.some(([, , c]) => c === id));
    const conversations = new Map<string, Conversation>();
    if (touched.length) {
      const rows = await tx.execute<Record<string, unknown>[]>(
        `update conversations c set last_seq = v.last_seq, updated_at = ?
         from jsonb_to_recordset(?::jsonb) as v(id uuid, last_seq bigint) where c.id = v.id returning c.*`,
        [now, JSON.stringify(touched.map(([id, c]) => ({ id, last_seq: c.lastSeq })))],
      );
      for (const row of rows) {
        const conversation = tx.map(ConversationSchema, row);
        conversations.set(conversation.id, conversation);
      }
    }
    await tx.flush();

    for (const [i, message, conversationId] of pendingMessages) {
      const newConversation = created.get(i);
      results[i] = {
        kind: 'stored',
        message,
        conversation: newConversation ?? conversations.get(conversationId)!,
        conversationCreated: Boolean(newConversation),
      };
    }
  }

  /** Messages already stored under the batch's idempotency keys, with their conversations. */
  async function findStored(em: Em, requests: AppendRequest[]) {
    const found = new Map<string, { message: Message; conversation: Conversation }>();
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
      found.set(`${message.userId}\u0000${message.clientMessageId}`, { message, conversation: byId.get(message.conversation)! });
    }
    return found;
  }

  return { append };
}

function keyOf(r: AppendRequest): string | undefined {
  return r.clientMessageId ? `${r.userId}\u0000${r.clientMessageId}` : undefined;
}

export type AppendBatcher = ReturnType<typeof createAppendBatcher>;
