// A client retrying a POST after a lost answer must not create a second message: Idempotency-Key
// (or clientMessageId in the body) makes the repeat return the stored message with 200.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, expectError, createConversation, type Api } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startGateway, type StartedGateway } from '../helpers/gateway.ts';

let db: TestDatabase;
let gw: StartedGateway;
let alice: Api;

beforeAll(async () => {
  db = await createTestDatabase();
  gw = await startGateway({ DATABASE_URL: db.url });
  alice = api(gw.url, gw.tokenFor('idem-alice'));
});

afterAll(async () => {
  await gw?.close();
  await db?.drop();
});

const rowsFor = (conversationId: string) =>
  db.query<{ id: string; seq: string; client_message_id: string | null }>(
    'select id, seq, client_message_id from messages where conversation_id = $1 order by seq',
    [conversationId],
  );

describe('POST /api/conversations/:id/messages with Idempotency-Key', () => {
  it('answers 201 the first time and 200 with the same message on a repeat, storing one row', async () => {
    const c = await createConversation(alice, 'idem');
    const send = () =>
      alice.post(`/api/conversations/${c.id}/messages`, { content: 'pay once' }, { headers: { 'Idempotency-Key': 'req-1' } });
    const first = await send();
    const second = await send();
    expect(first.status).toBe(201);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    expect(first.body.message).toMatchObject({ seq: 1, content: 'pay once', clientMessageId: 'req-1', conversationId: c.id });
    expect(await rowsFor(c.id)).toEqual([{ id: first.body.message.id, seq: '1', client_message_id: 'req-1' }]);
    const [conv] = await db.query<{ last_seq: string }>('select last_seq from conversations where id = $1', [c.id]);
    expect(conv!.last_seq).toBe('1');
  });

  it('refuses keys in the reserved assistant: namespace, so a client cannot pre-empt a reply', async () => {
    const c = await createConversation(alice, 'reserved');
    const bodyKey = await alice.post(`/api/conversations/${c.id}/messages`, { content: 'x', clientMessageId: 'assistant:abc' });
    expectError(bodyKey, 400, 'VALIDATION');
    const headerKey = await alice.post(
      `/api/conversations/${c.id}/messages`,
      { content: 'x' },
      { headers: { 'Idempotency-Key': 'assistant:abc' } },
    );
    expectError(headerKey, 400, 'VALIDATION');
    expect(await rowsFor(c.id)).toEqual([]);
  });

  it("treats the body's clientMessageId and the header as the same key", async () => {
    const c = await createConversation(alice, 'idem-body');
    const first = await alice.post(`/api/conversations/${c.id}/messages`, { content: 'hi', clientMessageId: 'same-key' });
    const viaHeader = await alice.post(
      `/api/conversations/${c.id}/messages`,
      { content: 'hi' },
      { headers: { 'Idempotency-Key': 'same-key' } },
    );
    const both = await alice.post(
      `/api/conversations/${c.id}/messages`,
      { content: 'hi', clientMessageId: 'same-key' },
      { headers: { 'Idempotency-Key': 'same-key' } },
    );
    expect([first.status, viaHeader.status, both.status]).toEqual([201, 200, 200]);
    expect(viaHeader.body.message.id).toBe(first.body.message.id);
    expect(both.body.message.id).toBe(first.body.message.id);
    expect(await rowsFor(c.id)).toHaveLength(1);
  });

  it('keeps later different keys and keyless sends as new messages with the next seq', async () => {
    const c = await createConversation(alice, 'idem-seq');
    const a = await alice.post(`/api/conversations/${c.id}/messages`, { content: 'a' }, { headers: { 'Idempotency-Key': 'k-a' } });
    await alice.post(`/api/conversations/${c.id}/messages`, { content: 'a' }, { headers: { 'Idempotency-Key': 'k-a' } });
    const b = await alice.post(`/api/conversations/${c.id}/messages`, { content: 'b' }, { headers: { 'Idempotency-Key': 'k-b' } });
    const n1 = await alice.post(`/api/conversations/${c.id}/messages`, { content: 'same text' });
    const n2 = await alice.post(`/api/conversations/${c.id}/messages`, { content: 'same text' });
    expect([a.status, b.status, n1.status, n2.status]).toEqual([201, 201, 201, 201]);
    expect([a, b, n1, n2].map((r) => r.body.message.seq)).toEqual([1, 2, 3, 4]);
    expect((await rowsFor(c.id)).map((r) => r.client_message_id)).toEqual(['k-a', 'k-b', null, null]);
  });

  it("scopes keys to the user: another user's identical key stores their own message", async () => {
    const bob = api(gw.url, gw.tokenFor('idem-bob'));
    const ca = await createConversation(alice, 'alice-key');
    const cb = await createConversation(bob, 'bob-key');
    const a = await alice.post(
      `/api/conversations/${ca.id}/messages`,
      { content: 'from alice' },
      { headers: { 'Idempotency-Key': 'shared-key' } },
    );
    const b = await bob.post(
      `/api/conversations/${cb.id}/messages`,
      { content: 'from bob' },
      { headers: { 'Idempotency-Key': 'shared-key' } },
    );
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.body.message.id).not.toBe(a.body.message.id);
    expect(b.body.message).toMatchObject({ conversationId: cb.id, content: 'from bob' });
    expect(await rowsFor(cb.id)).toHaveLength(1);
  });

  it('holds under concurrent retries of one key over HTTP', async () => {
    const c = await createConversation(alice, 'idem-race');
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        alice.post(`/api/conversations/${c.id}/messages`, { content: 'racing' }, { headers: { 'Idempotency-Key': 'race-1' } }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    expect(new Set(results.map((r) => r.body.message.id)).size).toBe(1);
    expect(await rowsFor(c.id)).toHaveLength(1);
  });
});
