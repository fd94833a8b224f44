// The per-user send limit over REST: past SEND_RATE_LIMIT sends in the window a user gets 429 RATE_LIMITED
// with a retry hint, nothing is stored, and other users are not affected.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createConversation, expectError } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startGateway, type StartedGateway } from '../helpers/gateway.ts';

let db: TestDatabase;
let gw: StartedGateway;

beforeAll(async () => {
  db = await createTestDatabase();
  // A window long enough that it cannot roll over during the test.
  gw = await startGateway({ DATABASE_URL: db.url, SEND_RATE_LIMIT: '3', SEND_RATE_WINDOW_S: '600' });
});

afterAll(async () => {
  await gw?.close();
  await db?.drop();
});

describe('send rate limit', () => {
  it('refuses the send after the limit with 429 RATE_LIMITED and Retry-After, storing nothing; other users still send', async () => {
    const alice = api(gw.url, gw.tokenFor('rl-alice'));
    const c = await createConversation(alice, 'chatty');
    const path = `/api/conversations/${c.id}/messages`;
    for (let i = 1; i <= 3; i++) expect((await alice.post(path, { content: `m${i}` })).status).toBe(201);

    const refused = await alice.post(path, { content: 'one too many' });
    expectError(refused, 429, 'RATE_LIMITED');
    expect(refused.body.error.retryAfterMs).toBeGreaterThan(0);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const rows = await db.query<{ content: string }>('select content from messages where conversation_id = $1 order by seq', [c.id]);
    expect(rows.map((r) => r.content)).toEqual(['m1', 'm2', 'm3']);

    // Reads and other writes are not sends.
    expect((await alice.get(`${path}?limit=1`)).status).toBe(200);
    expect((await alice.patch(`/api/conversations/${c.id}`, { title: 'still mine' })).status).toBe(200);

    const bob = api(gw.url, gw.tokenFor('rl-bob'));
    const cb = await createConversation(bob, 'quiet');
    expect((await bob.post(`/api/conversations/${cb.id}/messages`, { content: 'hello' })).status).toBe(201);
  });
});
