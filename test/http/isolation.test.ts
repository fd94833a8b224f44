// Isolation on every REST route (another user's things are NOT_FOUND, exactly like missing ones), and
// what deletion really removes from PostgreSQL: a conversation takes its messages, a user takes everything.
import { randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, createConversation, expectError, postMessage, type Api } from '../helpers/api.ts';
import type { TestDatabase } from '../helpers/db.ts';
import { gatewayOnFreshDatabase, TEST_SECRET, type StartedGateway } from '../helpers/gateway.ts';

let db: TestDatabase;
let gw: StartedGateway;

gatewayOnFreshDatabase((started) => ({ db, gateway: gw } = started));

const count = async (sql: string, params: unknown[]) => Number((await db.query<{ n: string }>(sql, params))[0]!.n);

describe("a user cannot see or touch another user's conversations", () => {
  let alice: Api;
  let bob: Api;
  let conversationId: string;

  beforeAll(async () => {
    alice = api(gw.url, gw.tokenFor('iso-alice'));
    bob = api(gw.url, gw.tokenFor('iso-bob'));
    conversationId = (await createConversation(alice, 'alice private')).id;
    await postMessage(alice, conversationId, 'first secret');
    await postMessage(alice, conversationId, 'second secret');
    // Bob exists too (his own conversation), so nothing below is explained by "unknown user".
    await createConversation(bob, 'bob own');
  });

  it("answers 404 NOT_FOUND on every route for another user's conversation, the same as for a missing one", async () => {
    const missing = randomUUID();
    const attempts = (id: string) => [
      bob.get(`/api/conversations/${id}`),
      bob.patch(`/api/conversations/${id}`, { title: 'taken over' }),
      bob.get(`/api/conversations/${id}/messages`),
      bob.get(`/api/conversations/${id}/messages?after=0`),
      bob.get(`/api/conversations/${id}/messages?before=100`),
      bob.post(`/api/conversations/${id}/messages`, { content: 'injected', clientMessageId: `inj-${id}` }),
      bob.delete(`/api/conversations/${id}`),
    ];
    const foreign = await Promise.all(attempts(conversationId));
    const absent = await Promise.all(attempts(missing));
    for (const [i, res] of foreign.entries()) {
      expectError(res, 404, 'NOT_FOUND');
      // No existence oracle: the answer for someone else's id is the answer for an id that does not exist.
      expect(res.body).toEqual(absent[i]!.body);
    }
  });

  it("leaves the owner's data exactly as it was after those attempts", async () => {
    const [row] = await db.query<{ title: string; last_seq: string; user_id: string }>(
      'select title, last_seq, user_id from conversations where id = $1',
      [conversationId],
    );
    expect(row).toEqual({ title: 'alice private', last_seq: '2', user_id: 'iso-alice' });
    const contents = await db.query<{ content: string; user_id: string }>(
      'select content, user_id from messages where conversation_id = $1 order by seq',
      [conversationId],
    );
    expect(contents).toEqual([
      { content: 'first secret', user_id: 'iso-alice' },
      { content: 'second secret', user_id: 'iso-alice' },
    ]);
    expect(await count(`select count(*) as n from messages where user_id = 'iso-bob'`, [])).toBe(0);

    const own = await alice.get(`/api/conversations/${conversationId}/messages`);
    expect(own.status).toBe(200);
    expect(own.body.messages.map((m: { content: string }) => m.content)).toEqual(['first secret', 'second secret']);
  });

  it("lists only the caller's own conversations", async () => {
    const bobs = await bob.get('/api/conversations');
    expect(bobs.status).toBe(200);
    expect(bobs.body.conversations.map((c: { title: string }) => c.title)).toEqual(['bob own']);
    const alices = await alice.get('/api/conversations');
    expect(alices.body.conversations.map((c: { id: string }) => c.id)).toEqual([conversationId]);
  });
});

describe('deleting a conversation', () => {
  it('answers 204, removes its messages from the database, and is then NOT_FOUND', async () => {
    const carol = api(gw.url, gw.tokenFor('del-carol'));
    const doomed = await createConversation(carol, 'doomed');
    const kept = await createConversation(carol, 'kept');
    for (const text of ['a', 'b', 'c']) await postMessage(carol, doomed.id, text);
    await postMessage(carol, kept.id, 'stays');
    expect(await count('select count(*) as n from messages where conversation_id = $1', [doomed.id])).toBe(3);

    const res = await carol.delete(`/api/conversations/${doomed.id}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');

    expect(await count('select count(*) as n from conversations where id = $1', [doomed.id])).toBe(0);
    expect(await count('select count(*) as n from messages where conversation_id = $1', [doomed.id])).toBe(0);
    // The other conversation and its message are untouched.
    expect(await count('select count(*) as n from messages where conversation_id = $1', [kept.id])).toBe(1);

    expectError(await carol.get(`/api/conversations/${doomed.id}`), 404, 'NOT_FOUND');
    expectError(await carol.get(`/api/conversations/${doomed.id}/messages`), 404, 'NOT_FOUND');
    expectError(await carol.delete(`/api/conversations/${doomed.id}`), 404, 'NOT_FOUND');
    const list = await carol.get('/api/conversations');
    expect(list.body.conversations.map((c: { id: string }) => c.id)).toEqual([kept.id]);
  });
});

describe('DELETE /api/me', () => {
  it('erases the user with every conversation and message, and touches no one else', async () => {
    const dave = api(gw.url, gw.tokenFor('erase-dave'));
    const erin = api(gw.url, gw.tokenFor('erase-erin'));
    const d1 = await createConversation(dave, 'd1');
    const d2 = await createConversation(dave, 'd2');
    await postMessage(dave, d1.id, 'one', 'dave-cm-1');
    await postMessage(dave, d2.id, 'two');
    const e1 = await createConversation(erin, 'e1');
    await postMessage(erin, e1.id, 'erin stays');

    const res = await dave.delete('/api/me');
    expect(res.status).toBe(204);

    // The row stays only as a tombstone saying when: it refuses older tokens (test/http/erasure.test.ts).
    expect(await count(`select count(*) as n from users where id = 'erase-dave' and erased_at is null`, [])).toBe(0);
    expect(await count(`select count(*) as n from conversations where user_id = 'erase-dave'`, [])).toBe(0);
    expect(await count(`select count(*) as n from messages where user_id = 'erase-dave'`, [])).toBe(0);
    expect(await count('select count(*) as n from messages where conversation_id = any($1::uuid[])', [[d1.id, d2.id]])).toBe(0);

    expect(await count(`select count(*) as n from users where id = 'erase-erin'`, [])).toBe(1);
    expect(await count(`select count(*) as n from messages where user_id = 'erase-erin'`, [])).toBe(1);

    // The token it was erased with is refused from then on, erasing again included.
    expectError(await dave.get('/api/conversations'), 401, 'UNAUTHORIZED');
    expectError(await dave.delete('/api/me'), 401, 'UNAUTHORIZED');
    // A token issued afterwards finds nothing left, and the erased user's clientMessageId is free again.
    const [{ erased_at }] = await db.query<{ erased_at: Date }>(`select erased_at from users where id = 'erase-dave'`);
    const iat = Math.ceil(erased_at.getTime() / 1000) + 1;
    const reborn = api(gw.url, jwt.sign({ sub: 'erase-dave', iat, exp: iat + 3600 }, TEST_SECRET, { algorithm: 'HS256' }));
    expect((await reborn.get('/api/conversations')).body).toEqual({ conversations: [], nextCursor: null });
    expectError(await reborn.get(`/api/conversations/${d1.id}`), 404, 'NOT_FOUND');
    const again = await createConversation(reborn, 'fresh start');
    const m = await postMessage(reborn, again.id, 'new life', 'dave-cm-1');
    expect(m.seq).toBe(1);
  });
});
