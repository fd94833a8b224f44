// Group commit, checked in PostgreSQL itself: appends that queue while one commits are written together in one
// statement, and each still gets its own right answer (seq, new conversation, NOT_FOUND, duplicate).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startGateway, type StartedGateway } from '../helpers/gateway.ts';
import { ErrorCode, GatewayError } from '../../src/shared/errors.ts';

let db: TestDatabase;
let node: StartedGateway;

beforeAll(async () => {
  db = await createTestDatabase();
  // One pooled connection: every append runs on it, so what it has prepared can be read back on it.
  node = await startGateway({ DATABASE_URL: db.url, DB_POOL_MAX: '1' });
});

afterAll(async () => {
  await node?.close();
  await db?.drop();
});

describe('a batch of appends', () => {
  it('answers each append as if it were alone, and stores them together', async () => {
    const { conversations, messages } = node.gateway.services;
    const owner = 'batch-owner';
    const { conversation } = (await conversations.create(owner, { title: 'existing' })).data;
    // The first append commits alone; the rest queue behind it and form one batch.
    const first = messages.append(owner, { conversationId: conversation.id, content: 'alone' });
    const batch = [
      messages.append(owner, { conversationId: conversation.id, content: 'a', clientMessageId: 'batch-a' }),
      messages.append('batch-intruder', { conversationId: conversation.id, content: 'not mine' }),
      messages.append(owner, { conversationId: conversation.id, content: 'b' }),
      messages.append('batch-newcomer', { content: 'first words of a new user' }),
      messages.append(owner, { conversationId: conversation.id, content: 'a again', clientMessageId: 'batch-a' }),
      messages.append(owner, { content: 'another new conversation' }),
      messages.append(owner, { conversationId: conversation.id, content: 'c' }),
    ];
    const settled = await Promise.allSettled([first, ...batch]);
    const [alone, a, intruder, b, newcomer, aAgain, started, c] = settled.map((s) => (s.status === 'fulfilled' ? s.value.data : s.reason));

    expect(alone.message.seq).toBe(1);
    // The owner's appends take the next seqs in the order they were made; the retry of `a` is `a`.
    expect([a.message.seq, b.message.seq, c.message.seq]).toEqual([2, 3, 4]);
    expect(aAgain).toMatchObject({ duplicate: true, message: { id: a.message.id, seq: 2, content: 'a' } });
    // Each answer carries the conversation as its own message left it.
    for (const r of [a, b, c]) expect(r.conversation).toMatchObject({ id: conversation.id, lastSeq: r.message.seq });
    // Another user's conversation is as missing as one that does not exist, and nothing of theirs is stored.
    expect(intruder).toBeInstanceOf(GatewayError);
    expect(intruder.code).toBe(ErrorCode.NOT_FOUND);
    // Appends without a conversation start one each, at seq 1, for users the database did not know yet too.
    for (const r of [newcomer, started]) {
      expect(r.message.seq).toBe(1);
      expect(r.conversation.lastSeq).toBe(1);
      expect(r.message.conversationId).toBe(r.conversation.id);
    }
    expect(newcomer.conversation.title).toBe('first words of a new user');

    const stored = await db.query<{ id: string; user_id: string; seq: string; content: string; created_at: Date }>(
      'select id, user_id, seq, content, created_at from messages where id = any($1) order by created_at, seq',
      [[a, b, c, newcomer, started].map((r) => r.message.id)],
    );
    expect(stored).toHaveLength(5);
    // Written in one statement: one timestamp for the whole batch, the one each answer carries.
    expect(new Set(stored.map((m) => m.created_at.toISOString())).size).toBe(1);
    expect(stored[0]!.created_at.toISOString()).toBe(a.message.createdAt);
    const mine = await db.query<{ seq: string; content: string }>(
      'select seq, content from messages where conversation_id = $1 order by seq',
      [conversation.id],
    );
    expect(mine).toEqual([
      { seq: '1', content: 'alone' },
      { seq: '2', content: 'a' },
      { seq: '3', content: 'b' },
      { seq: '4', content: 'c' },
    ]);
    const [conv] = await db.query<{ last_seq: string }>('select last_seq from conversations where id = $1', [conversation.id]);
    expect(conv!.last_seq).toBe('4');
    const users = await db.query<{ id: string }>("select id from users where id in ('batch-newcomer', 'batch-intruder')");
    expect(users).toEqual([{ id: 'batch-newcomer' }]);
  });

  it('stores the reply a message asks for in the same statement, at the next seq, in new and existing conversations alike', async () => {
    const { conversations, messages } = node.gateway.services;
    const owner = 'batch-replies';
    const { conversation } = (await conversations.create(owner, { title: 'replies' })).data;
    const reply = { metadata: { model: 'test-model' } };
    await messages.append(owner, { conversationId: conversation.id, content: 'alone' });
    const [x, plain, y, fresh] = await Promise.all([
      messages.append(owner, { conversationId: conversation.id, content: 'x', clientMessageId: 'replies-x', reply }),
      messages.append(owner, { conversationId: conversation.id, content: 'no reply' }),
      messages.append(owner, { conversationId: conversation.id, content: 'y', reply }),
      messages.append(owner, { content: 'a new conversation', reply }),
    ]);
    expect([x.data.message.seq, x.data.reply!.seq, plain.data.message.seq, y.data.message.seq, y.data.reply!.seq]).toEqual([2, 3, 4, 5, 6]);
    expect(plain.data.reply).toBeUndefined();
    for (const sent of [x, y, fresh]) {
      expect(sent.data.reply).toMatchObject({
        role: 'assistant',
        status: 'streaming',
        content: '',
        conversationId: sent.data.message.conversationId,
        clientMessageId: `assistant:${sent.data.message.id}`,
        metadata: { model: 'test-model', replyToId: sent.data.message.id },
      });
      // Told to the tabs right after the message itself.
      expect(
        sent.broadcasts.filter((b) => b.event === 'message:created').map((b) => (b.payload as { message: { id: string } }).message.id),
      ).toEqual([sent.data.message.id, sent.data.reply!.id]);
    }
    expect([fresh.data.message.seq, fresh.data.reply!.seq]).toEqual([1, 2]);
    const rows = await db.query<{ conversation_id: string; last_seq: string }>(
      'select id as conversation_id, last_seq from conversations where id = any($1) order by last_seq',
      [[conversation.id, fresh.data.conversation.id]],
    );
    expect(rows.map((r) => r.last_seq)).toEqual(['2', '6']);
    // A repeat stores nothing, and the reply of the first attempt is found by its message.
    const again = await messages.append(owner, { conversationId: conversation.id, content: 'x', clientMessageId: 'replies-x', reply });
    expect(again.data).toMatchObject({ duplicate: true, message: { id: x.data.message.id } });
    expect((await messages.findReply(owner, x.data.message.id))!.id).toBe(x.data.reply!.id);
    expect(await messages.findReply('someone-else', x.data.message.id)).toBeUndefined();
  });

  it('takes a conversation id in upper case as the same conversation, and answers with its canonical id', async () => {
    const { conversations, messages } = node.gateway.services;
    const { conversation } = (await conversations.create('batch-case', { title: 'case' })).data;
    const upper = conversation.id.toUpperCase();
    const [one, two] = await Promise.all([
      messages.append('batch-case', { conversationId: upper, content: 'upper' }),
      messages.append('batch-case', { conversationId: conversation.id, content: 'lower' }),
    ]);
    expect(one.data.message).toMatchObject({ conversationId: conversation.id, seq: 1 });
    expect(two.data.message).toMatchObject({ conversationId: conversation.id, seq: 2 });
    expect(one.broadcasts.map((b) => b.event)).toEqual(['message:created']);
  });

  it('stores half an emoji as U+FFFD instead of failing, and cuts a title between characters', async () => {
    const { messages } = node.gateway.services;
    // 78 letters, then an emoji across the title's cut (two UTF-16 units), then more text.
    const started = await messages.append('batch-unicode', { content: `${'a'.repeat(78)}\u{1F600}${'b'.repeat(10)}` });
    expect(started.data.conversation.title).toBe(`${'a'.repeat(78)}…`);
    const half = await messages.append('batch-unicode', { conversationId: started.data.conversation.id, content: 'half \uD83D an emoji' });
    expect(half.data.message.seq).toBe(2);
    const [row] = await db.query<{ content: string }>('select content from messages where id = $1', [half.data.message.id]);
    expect(row!.content).toBe('half \uFFFD an emoji');
  });

  it('is a statement PostgreSQL prepared once on the connection and then reuses', async () => {
    const { conversations, messages } = node.gateway.services;
    const runs = async () => {
      const rows = await node.gateway.orm.em
        .fork()
        .execute<{ runs: string }[]>(
          "select generic_plans + custom_plans as runs from pg_prepared_statements where name = 'chat_append_batch_v8'",
        );
      return rows.map((r) => Number(r.runs));
    };
    const { conversation } = (await conversations.create('batch-prepared', { title: 'p' })).data;
    await messages.append('batch-prepared', { conversationId: conversation.id, content: 'first' });
    const [before] = await runs();
    for (let i = 0; i < 8; i++) await messages.append('batch-prepared', { conversationId: conversation.id, content: `m${i}` });
    const after = await runs();
    expect(after).toEqual([before! + 8]);
  });

  it('goes on working on a connection that prepared it after a migration adds a column to conversations', async () => {
    const { conversations, messages } = node.gateway.services;
    const { conversation } = (await conversations.create('batch-migrated', { title: 'm' })).data;
    await messages.append('batch-migrated', { conversationId: conversation.id, content: 'before' });
    await db.query('alter table conversations add column archived_at timestamptz');
    try {
      const after = await messages.append('batch-migrated', { conversationId: conversation.id, content: 'after' });
      expect(after.data.message.seq).toBe(2);
      expect(after.data.conversation.lastSeq).toBe(2);
    } finally {
      await db.query('alter table conversations drop column archived_at');
    }
  });
});
