// A batch of appends meeting real PostgreSQL failures: one append the database refuses, a deadlock with another
// connection, a deadlock on every attempt, a row lock held past the write bound. Whatever happens, each append is
// stored exactly once or refused with an error of its own, and the database is read as the proof.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ErrorCode, GatewayError } from '../../src/shared/errors.ts';
import { toGatewayError } from '../../src/shared/failures.ts';
import { CHECK_APP_NAME, createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startGateway, type StartedGateway } from '../helpers/gateway.ts';

let db: TestDatabase;
let node: StartedGateway;
/** The "other node": a connection of its own that takes row locks the way a second gateway's batch would. */
let other: pg.Client | undefined;

/** The write bound: generous next to PostgreSQL's deadlock check (1 s), short enough for the lock test to wait out. */
const WRITE_TIMEOUT_MS = 4000;

beforeAll(async () => {
  db = await createTestDatabase();
  node = await startGateway({ DATABASE_URL: db.url, WRITE_TIMEOUT_MS: String(WRITE_TIMEOUT_MS) });
  // Installed in this file's database only: a message whose content is 'poison' cannot be stored, and one whose
  // content starts with 'deadlock-always' fails as a deadlock at every attempt.
  await db.query(`
    create function refuse_test_content() returns trigger language plpgsql as $$
    begin
      if new.content = 'poison' then
        raise exception 'this content is refused by the test trigger' using errcode = 'check_violation';
      end if;
      if new.content like 'deadlock-always%' then
        raise exception 'deadlock raised by the test trigger' using errcode = 'deadlock_detected';
      end if;
      return new;
    end $$`);
  await db.query('create trigger refuse_test_content before insert on messages for each row execute function refuse_test_content()');
});

afterEach(async () => {
  await other?.end().catch(() => {});
  other = undefined;
});

afterAll(async () => {
  await node?.close();
  await db?.drop();
});

/** Attempts at writing a batch so far, by outcome (the chat_append_batches_total counter). */
async function outcomes(): Promise<Record<string, number>> {
  const { values } = await node.gateway.metrics.appendBatches.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.outcome), v.value]));
}

function delta(before: Record<string, number>, after: Record<string, number>, outcome: string): number {
  return (after[outcome] ?? 0) - (before[outcome] ?? 0);
}

async function contentsOf(conversationId: string): Promise<{ seq: number; content: string }[]> {
  const rows = await db.query<{ seq: string; content: string }>(
    'select seq, content from messages where conversation_id = $1 order by seq',
    [conversationId],
  );
  return rows.map((r) => ({ seq: Number(r.seq), content: r.content }));
}

async function connectOther(): Promise<pg.Client> {
  other = new pg.Client({ connectionString: db.url, application_name: CHECK_APP_NAME });
  await other.connect();
  // Never this connection's deadlock check that ends a cycle with the gateway: the gateway's statement is the
  // one PostgreSQL cancels, as it would be with another node's batch that has waited longer.
  await other.query("set deadlock_timeout = '60s'");
  return other;
}

/** Resolves once a connection of the gateway waits for a row lock (its batch is blocked on `other`). */
async function gatewayWaitsForALock(): Promise<void> {
  await vi.waitFor(
    async () => {
      const rows = await db.query(
        "select pid from pg_stat_activity where datname = $1 and application_name <> $2 and wait_event_type = 'Lock'",
        [db.name, CHECK_APP_NAME],
      );
      expect(rows.length).toBeGreaterThan(0);
    },
    { timeout: 15_000, interval: 20 },
  );
}

describe('a batch with an append the database refuses', () => {
  it('is split: every other append commits exactly once, and only the refused one fails', async () => {
    const { conversations, messages } = node.gateway.services;
    const { conversation } = (await conversations.create('split-owner', { title: 'split' })).data;
    const { conversation: theirs } = (await conversations.create('split-other', { title: 'theirs' })).data;
    const before = await outcomes();
    // The first append commits alone; the ones made while it commits queue behind it and go as one batch.
    const first = messages.append('split-owner', { conversationId: conversation.id, content: 'alone' });
    const batch = [
      messages.append('split-owner', { conversationId: conversation.id, content: 'good 1', clientMessageId: 'split-1' }),
      messages.append('split-owner', { conversationId: conversation.id, content: 'good 2' }),
      messages.append('split-other', { conversationId: theirs.id, content: 'poison', clientMessageId: 'split-poison' }),
      messages.append('split-owner', { conversationId: conversation.id, content: 'good 3' }),
      messages.append('split-owner', { conversationId: conversation.id, content: 'good 1', clientMessageId: 'split-1' }),
      messages.append('split-owner', { content: 'good in a new conversation' }),
    ];
    const [alone, ...settled] = await Promise.allSettled([first, ...batch]);
    expect(alone!.status).toBe('fulfilled');
    const [good1, good2, poison, good3, good1Again, fresh] = settled;

    // The refused append fails on its own, as INTERNAL on the wire (a bug or a constraint, not an outage to retry).
    expect(poison!.status).toBe('rejected');
    const reason = (poison as PromiseRejectedResult).reason;
    expect(String(reason?.message ?? reason)).toMatch(/refused by the test trigger/);
    expect(toGatewayError(reason).code).toBe(ErrorCode.INTERNAL);
    for (const s of [good1, good2, good3, good1Again, fresh]) expect(s!.status).toBe('fulfilled');
    const value = (s: PromiseSettledResult<unknown>) =>
      (s as PromiseFulfilledResult<{ data: { message: { id: string; seq: number; conversationId: string }; duplicate?: boolean } }>).value
        .data;
    // The two sends of good 1's key are one message: the same id, one of them answered as the repeat. Written one by
    // one at the same time after the split, either may be the one that stored it.
    expect(value(good1Again!).message.id).toBe(value(good1!).message.id);
    expect([value(good1!).duplicate, value(good1Again!).duplicate].sort()).toEqual([false, true]);
    expect(value(fresh!).message.seq).toBe(1);

    // The batch was tried whole, failed, and its appends were then written one by one.
    const after = await outcomes();
    expect(delta(before, after, 'failed')).toBe(2);

    // Stored exactly once each with no gap in seq; nothing of the refused one. Written one by one at the same
    // time, the three take their seqs in whichever order they commit: sends made at once have no order of their own.
    const stored = await contentsOf(conversation.id);
    expect(stored.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
    expect(stored.map((m) => m.content).sort()).toEqual(['alone', 'good 1', 'good 2', 'good 3']);
    expect(await contentsOf(theirs.id)).toEqual([]);
    const [conv] = await db.query<{ last_seq: string }>('select last_seq from conversations where id = $1', [theirs.id]);
    expect(conv!.last_seq).toBe('0');
    expect(await contentsOf(value(fresh!).message.conversationId)).toEqual([{ seq: 1, content: 'good in a new conversation' }]);
  });
});

describe('a batch caught in a deadlock', () => {
  it('is written again and commits once when the deadlock is real and the other transaction goes on', async () => {
    const { conversations, messages } = node.gateway.services;
    const made = await Promise.all(['one', 'two'].map((title) => conversations.create('deadlock-owner', { title })));
    // The batch locks its conversations in id order: `low` first, then `high`.
    const [low, high] = made.map((m) => m.data.conversation.id).sort();
    const warm = await conversations.create('deadlock-owner', { title: 'warm' });
    const before = await outcomes();

    const locker = await connectOther();
    await locker.query('begin');
    await locker.query('select 1 from conversations where id = $1 for update', [high]);

    // One batch with an append to each: it takes `low`, then waits for `high`.
    const first = messages.append('deadlock-owner', { conversationId: warm.data.conversation.id, content: 'warm' });
    const toLow = messages.append('deadlock-owner', { conversationId: low!, content: 'to low', clientMessageId: 'dl-low' });
    const toHigh = messages.append('deadlock-owner', { conversationId: high!, content: 'to high', clientMessageId: 'dl-high' });
    await first;
    await gatewayWaitsForALock();
    // Now the other transaction wants `low`: a cycle. PostgreSQL cancels the gateway's statement (40P01).
    const lockingLow = locker.query('select 1 from conversations where id = $1 for update', [low]);
    await lockingLow;
    // The gateway's retry now waits for `low`; the other transaction commits and lets it through.
    await vi.waitFor(async () => expect(delta(before, await outcomes(), 'deadlock')).toBe(1), { timeout: 15_000, interval: 20 });
    await locker.query('commit');

    const [low1, high1] = await Promise.all([toLow, toHigh]);
    expect(low1.data.message).toMatchObject({ content: 'to low', seq: 1 });
    expect(high1.data.message).toMatchObject({ content: 'to high', seq: 1 });
    expect(await contentsOf(low!)).toEqual([{ seq: 1, content: 'to low' }]);
    expect(await contentsOf(high!)).toEqual([{ seq: 1, content: 'to high' }]);
    const after = await outcomes();
    expect(delta(before, after, 'deadlock')).toBe(1);
    // The warm-up and the batch, the batch only once: it was not split, nothing failed.
    expect(delta(before, after, 'committed')).toBe(2);
    expect(delta(before, after, 'failed')).toBe(0);
  });

  it('gives up after its attempts: the batch is split, the others commit once, the one that always deadlocks is refused', async () => {
    const { conversations, messages } = node.gateway.services;
    const { conversation } = (await conversations.create('attempts-owner', { title: 'attempts' })).data;
    const before = await outcomes();
    const first = messages.append('attempts-owner', { conversationId: conversation.id, content: 'alone' });
    const batch = [
      messages.append('attempts-owner', { conversationId: conversation.id, content: 'kept 1' }),
      messages.append('attempts-owner', { conversationId: conversation.id, content: 'deadlock-always' }),
      messages.append('attempts-owner', { conversationId: conversation.id, content: 'kept 2' }),
    ];
    await first;
    const [kept1, doomed, kept2] = await Promise.allSettled(batch);
    expect(kept1!.status).toBe('fulfilled');
    expect(kept2!.status).toBe('fulfilled');
    expect(doomed!.status).toBe('rejected');
    expect(String((doomed as PromiseRejectedResult).reason?.message)).toMatch(/deadlock raised by the test trigger/);

    const after = await outcomes();
    // Four attempts as a batch, then four for the doomed append alone; the two others commit alone.
    expect(delta(before, after, 'deadlock')).toBe(8);
    expect(delta(before, after, 'committed')).toBe(3);
    const stored = await contentsOf(conversation.id);
    expect(stored.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(stored.map((m) => m.content).sort()).toEqual(['alone', 'kept 1', 'kept 2']);
  });
});

describe('a batch blocked by a row lock held past the write bound', () => {
  it('is refused as UNAVAILABLE and stores nothing, while sends queued behind it commit; once the lock is gone it goes through', async () => {
    const { conversations, messages } = node.gateway.services;
    const { conversation: locked } = (await conversations.create('lock-owner', { title: 'locked' })).data;
    const { conversation: free } = (await conversations.create('lock-owner', { title: 'free' })).data;
    const { conversation: warm } = (await conversations.create('lock-owner', { title: 'warm' })).data;
    const locker = await connectOther();
    await locker.query('begin');
    await locker.query('select 1 from conversations where id = $1 for update', [locked.id]);

    const first = messages.append('lock-owner', { conversationId: warm.id, content: 'warm' });
    const blocked = [
      messages.append('lock-owner', { conversationId: locked.id, content: 'into the locked one' }),
      messages.append('lock-owner', { conversationId: free.id, content: 'beside it' }),
    ];
    const settled = Promise.allSettled(blocked);
    await first;
    await gatewayWaitsForALock();
    // A batch stuck on a lock gives up its place: a send made now commits while the lock is still held.
    const behind = await messages.append('lock-owner', { conversationId: free.id, content: 'behind it' });
    expect(behind.data.message.seq).toBe(1);

    const [intoLocked, beside] = await settled;
    for (const s of [intoLocked!, beside!]) {
      expect(s.status).toBe('rejected');
      const err = toGatewayError((s as PromiseRejectedResult).reason);
      expect(err).toBeInstanceOf(GatewayError);
      expect(err.code).toBe(ErrorCode.UNAVAILABLE);
    }
    expect(await contentsOf(locked.id)).toEqual([]);
    expect(await contentsOf(free.id)).toEqual([{ seq: 1, content: 'behind it' }]);

    await locker.query('commit');
    const again = await messages.append('lock-owner', { conversationId: locked.id, content: 'into the locked one' });
    expect(again.data.message.seq).toBe(1);
    expect(await contentsOf(locked.id)).toEqual([{ seq: 1, content: 'into the locked one' }]);
  });
});
