// The waiting chat routes (POST /api/chat and /api/:userId/chat): the answer carries the assistant's reply,
// both messages are stored in one conversation in seq order, and the path's user must be the token's.
import { describe, expect, it } from 'vitest';
import { api, createConversation, expectError } from '../helpers/api.ts';
import type { TestDatabase } from '../helpers/db.ts';
import { gatewayOnFreshDatabase, startGateway, type StartedGateway } from '../helpers/gateway.ts';

let db: TestDatabase;
let gw: StartedGateway;

gatewayOnFreshDatabase((started) => ({ db, gateway: gw } = started), { ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '0' });

const messagesOf = (conversationId: string) =>
  db.query<{ seq: number; role: string; status: string; content: string; metadata: Record<string, unknown> | null; id: string }>(
    'select id, seq::int as seq, role, status, content, metadata from messages where conversation_id = $1 order by seq',
    [conversationId],
  );

describe('POST /api/chat', () => {
  it('starts a conversation, answers with the reply, and stores both messages', async () => {
    const client = api(gw.url, gw.tokenFor('chat-user'));
    const res = await client.post('/api/chat', { message: 'hello there' });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ response: 'Echo: hello there', conversation_id: expect.any(String) });

    const rows = await messagesOf(res.body.conversation_id);
    expect(rows.map((r) => [r.seq, r.role, r.status, r.content])).toEqual([
      [1, 'user', 'complete', 'hello there'],
      [2, 'assistant', 'complete', 'Echo: hello there'],
    ]);
    expect(rows[1]!.metadata).toMatchObject({ replyToId: rows[0]!.id, model: 'echo' });
    const [conv] = await db.query<{ title: string; last_seq: string; user_id: string }>(
      'select title, last_seq, user_id from conversations where id = $1',
      [res.body.conversation_id],
    );
    expect(conv).toEqual({ title: 'hello there', last_seq: '2', user_id: 'chat-user' });

    const next = await client.post('/api/chat', { message: 'again', conversation_id: res.body.conversation_id });
    expect(next.body).toEqual({ response: 'Echo: again', conversation_id: res.body.conversation_id });
    expect((await messagesOf(res.body.conversation_id)).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
  });

  it("POST /api/:userId/chat works for the token's user and is 403 FORBIDDEN for anyone else", async () => {
    const client = api(gw.url, gw.tokenFor('path-user'));
    const own = await client.post('/api/path-user/chat', { message: 'mine' });
    expect(own.status).toBe(200);
    expect(own.body.response).toBe('Echo: mine');

    expectError(await client.post('/api/someone-else/chat', { message: 'theirs' }), 403, 'FORBIDDEN');
    const [n] = await db.query<{ n: string }>(`select count(*) as n from messages where user_id in ('path-user', 'someone-else')`);
    expect(n!.n).toBe('2');
  });

  it("refuses another user's conversation_id as NOT_FOUND and bad input as VALIDATION", async () => {
    const owner = api(gw.url, gw.tokenFor('chat-owner'));
    const c = await createConversation(owner, 'private');
    const intruder = api(gw.url, gw.tokenFor('chat-intruder'));
    expectError(await intruder.post('/api/chat', { message: 'hi', conversation_id: c.id }), 404, 'NOT_FOUND');
    expect(await messagesOf(c.id)).toEqual([]);
    expectError(await intruder.post('/api/chat', { message: '   ' }), 400, 'VALIDATION');
    expectError(await intruder.post('/api/chat', { message: 'hi', conversation_id: 'nope' }), 400, 'VALIDATION');
    expectError(await api(gw.url).post('/api/chat', { message: 'hi' }), 401, 'UNAUTHORIZED');
  });
});

describe('POST /api/chat with a slow assistant', () => {
  it('answers 504 TIMEOUT when the reply takes longer than CHAT_TIMEOUT_MS, having stored the user message', async () => {
    const slow = await startGateway({
      DATABASE_URL: db.url,
      ASSISTANT: 'echo',
      ASSISTANT_DELAY_MS: '2000',
      CHAT_TIMEOUT_MS: '1',
      SHUTDOWN_TIMEOUT_MS: '200',
    });
    try {
      const client = api(slow.url, slow.tokenFor('slow-user'));
      const res = await client.post('/api/chat', { message: 'take your time' });
      expectError(res, 504, 'TIMEOUT');
      const rows = await db.query<{ role: string; content: string }>(
        `select role, content from messages where user_id = 'slow-user' and role = 'user'`,
      );
      expect(rows).toEqual([{ role: 'user', content: 'take your time' }]);
    } finally {
      await slow.close();
    }
  });
});
