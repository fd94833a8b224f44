// Concurrency at the service level, checked in PostgreSQL itself: idempotent appends under a retry storm,
// and gap-free seq under many connections and several nodes at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, migrationNames, type TestDatabase } from '../helpers/db.ts';
import { startGateway, type StartedGateway } from '../helpers/gateway.ts';

let db: TestDatabase;
/** Four nodes on one database, started together: each pool holds up to 5 connections, 20 in all. */
let nodes: StartedGateway[];

beforeAll(async () => {
  db = await createTestDatabase();
  nodes = await Promise.all([1, 2, 3, 4].map((i) => startGateway({ DATABASE_URL: db.url, NODE_ID: `node-${i}`, DB_POOL_MAX: '5' })));
});

afterAll(async () => {
  await Promise.all((nodes ?? []).map((n) => n.close()));
  await db?.drop();
});

const rows = <R extends Record<string, unknown>>(sql: string, params: unknown[] = []) => db.query<R>(sql, params);

describe('nodes that start together', () => {
  it('apply each migration exactly once, without racing', async () => {
    const applied = await rows<{ name: string }>('select name from mikro_orm_migrations order by name');
    expect(applied.map((r) => r.name)).toEqual(migrationNames());
  });
});

describe('idempotent append: 50 concurrent retries of one clientMessageId', () => {
  it('stores one message in an existing conversation and answers every retry with it', async () => {
    const userId = 'conc-idem';
    const services = nodes[0]!.gateway.services;
    const { conversation } = (await services.conversations.create(userId, { title: 'retry storm' })).data;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        // Spread over the four nodes: retries of a lost ack may land on any node.
        nodes[i % 4]!.gateway.services.messages.append(userId, {
          conversationId: conversation.id,
          content: 'hello once',
          clientMessageId: 'storm-1',
        }),
      ),
    );
    const ids = new Set(results.map((r) => r.data.message.id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => !r.data.duplicate)).toHaveLength(1);
    expect(results.filter((r) => r.data.duplicate)).toHaveLength(49);
    // Only the stored one is broadcast; a duplicate tells the tabs nothing.
    for (const r of results) expect(r.broadcasts.length).toBe(r.data.duplicate ? 0 : 1);
    for (const r of results) expect(r.data.message).toMatchObject({ seq: 1, content: 'hello once', clientMessageId: 'storm-1' });

    const stored = await rows<{ id: string; seq: string }>('select id, seq from messages where conversation_id = $1', [conversation.id]);
    expect(stored).toEqual([{ id: [...ids][0], seq: '1' }]);
    // The 49 losers rolled back their seq bump too: no gap before the next message.
    const [conv] = await rows<{ last_seq: string }>('select last_seq from conversations where id = $1', [conversation.id]);
    expect(conv!.last_seq).toBe('1');
    const next = await services.messages.append(userId, { conversationId: conversation.id, content: 'next', clientMessageId: 'storm-2' });
    expect(next.data.message.seq).toBe(2);
  });

  it('starts one conversation only when the retried message is the first of a new one', async () => {
    const userId = 'conc-idem-new';
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        nodes[i % 4]!.gateway.services.messages.append(userId, { content: 'start here', clientMessageId: 'first-msg' }),
      ),
    );
    expect(new Set(results.map((r) => r.data.message.id)).size).toBe(1);
    expect(new Set(results.map((r) => r.data.conversation.id)).size).toBe(1);
    expect(results.filter((r) => !r.data.duplicate)).toHaveLength(1);
    const convs = await rows<{ id: string; title: string; last_seq: string }>(
      'select id, title, last_seq from conversations where user_id = $1',
      [userId],
    );
    expect(convs).toEqual([{ id: results[0]!.data.conversation.id, title: 'start here', last_seq: '1' }]);
    const msgs = await rows('select id from messages where user_id = $1', [userId]);
    expect(msgs).toHaveLength(1);
  });
});

describe('seq under load: 200 concurrent appends into one conversation', () => {
  it('hands out exactly 1..200, once each, in commit order, across 20 connections on 4 nodes', async () => {
    const userId = 'conc-seq';
    const { conversation } = (await nodes[0]!.gateway.services.conversations.create(userId, { title: 'busy' })).data;
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        nodes[i % 4]!.gateway.services.messages.append(userId, {
          conversationId: conversation.id,
          content: `message ${i}`,
          clientMessageId: `load-${i}`,
        }),
      ),
    );
    // What the callers were told…
    const answered = results.map((r) => r.data.message.seq).sort((a, b) => a - b);
    expect(answered).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(results.every((r) => !r.data.duplicate)).toBe(true);

    // …is what PostgreSQL holds.
    const stored = await rows<{ seq: number; client_message_id: string; id: string }>(
      'select seq::int as seq, client_message_id, id from messages where conversation_id = $1 order by seq',
      [conversation.id],
    );
    expect(stored.map((r) => r.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(new Set(stored.map((r) => r.client_message_id)).size).toBe(200);
    const bySeq = new Map(stored.map((r) => [r.seq, r.id]));
    for (const r of results) expect(bySeq.get(r.data.message.seq)).toBe(r.data.message.id);
    const [conv] = await rows<{ last_seq: string }>('select last_seq from conversations where id = $1', [conversation.id]);
    expect(conv!.last_seq).toBe('200');
    // The conversation a caller got back is a committed state that already includes its message.
    for (const r of results) {
      expect(r.data.conversation.lastSeq).toBeGreaterThanOrEqual(r.data.message.seq);
      expect(r.data.conversation.lastSeq).toBeLessThanOrEqual(200);
    }
  });

  it("keeps every conversation's seq independent when several are written at once", async () => {
    const userId = 'conc-multi';
    const services = nodes[1]!.gateway.services;
    const convs = await Promise.all([0, 1, 2, 3].map((i) => services.conversations.create(userId, { title: `c${i}` })));
    await Promise.all(
      Array.from({ length: 80 }, (_, i) =>
        nodes[i % 4]!.gateway.services.messages.append(userId, {
          conversationId: convs[i % 4]!.data.conversation.id,
          content: `m${i}`,
          clientMessageId: `multi-${i}`,
        }),
      ),
    );
    const seqs = await rows<{ conversation_id: string; seqs: number[]; last_seq: number }>(
      `select c.id as conversation_id, array_agg(m.seq::int order by m.seq) as seqs, c.last_seq::int as last_seq
         from conversations c join messages m on m.conversation_id = c.id where c.user_id = $1 group by c.id`,
      [userId],
    );
    expect(seqs).toHaveLength(4);
    for (const s of seqs) {
      expect(s.seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(s.last_seq).toBe(20);
    }
  });
});
