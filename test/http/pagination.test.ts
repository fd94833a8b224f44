// Paging as a client does it over REST: the conversation list through cursors (including rows whose
// updated_at ties, forced with SQL), and history latest / before / after / limit / hasMore at the edges.
import { beforeAll, describe, expect, it } from 'vitest';
import { api, createConversation, expectError, postMessage, type Api } from '../helpers/api.ts';
import type { TestDatabase } from '../helpers/db.ts';
import { gatewayOnFreshDatabase, type StartedGateway } from '../helpers/gateway.ts';

let db: TestDatabase;
let gw: StartedGateway;

gatewayOnFreshDatabase((started) => ({ db, gateway: gw } = started));

interface Conv {
  id: string;
  title: string | null;
  updatedAt: string;
  lastSeq: number;
}

async function pageThrough(client: Api, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const qs: string = cursor ? `?limit=${limit}&cursor=${encodeURIComponent(cursor)}` : `?limit=${limit}`;
    const res = await client.get(`/api/conversations${qs}`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.conversations.length).toBeLessThanOrEqual(limit);
    ids.push(...res.body.conversations.map((c: Conv) => c.id));
    cursor = res.body.nextCursor;
    pages++;
    if (cursor !== null) expect(res.body.conversations).toHaveLength(limit);
    expect(pages).toBeLessThan(50); // a cursor that never ends would loop forever
  } while (cursor !== null);
  return { ids, pages };
}

describe('conversation list cursors', () => {
  let client: Api;
  let expected: string[];

  beforeAll(async () => {
    client = api(gw.url, gw.tokenFor('page-user'));
    const made: Conv[] = [];
    for (let i = 0; i < 8; i++) made.push(await createConversation(client, `c${i}`));
    // Three groups share one updated_at each (in the past, ms precision as the gateway writes it); one stays apart.
    const groups: [string, Conv[]][] = [
      ['2021-01-01T00:00:00.000Z', made.slice(0, 3)],
      ['2020-06-01T12:00:00.500Z', made.slice(3, 5)],
      ['2022-02-03T04:05:06.789Z', made.slice(5, 7)],
    ];
    for (const [at, convs] of groups) {
      await db.query('update conversations set updated_at = $1 where id = any($2::uuid[])', [at, convs.map((c) => c.id)]);
    }
    const rows = await db.query<{ id: string }>(
      `select id from conversations where user_id = 'page-user' order by updated_at desc, id desc`,
    );
    expected = rows.map((r) => r.id);
    expect(expected).toHaveLength(8);
    // Someone else's conversations with the same timestamps must never leak into the pages.
    const other = api(gw.url, gw.tokenFor('page-other'));
    const theirs = await createConversation(other, 'not yours');
    await db.query(`update conversations set updated_at = '2021-01-01T00:00:00.000Z' where id = $1`, [theirs.id]);
  });

  it.each([1, 2, 3, 8, 100])('with limit %i shows every conversation exactly once, newest first, ties by id desc', async (limit) => {
    const { ids, pages } = await pageThrough(client, limit);
    expect(ids).toEqual(expected);
    expect(pages).toBe(Math.max(1, Math.ceil(8 / limit)));
  });

  it('returns updatedAt in descending order with the stored times', async () => {
    const res = await client.get('/api/conversations?limit=100');
    const times = res.body.conversations.map((c: Conv) => c.updatedAt);
    // The one left alone was written just now; the forced groups follow, times exactly as stored.
    expect(times.slice(1)).toEqual([
      ...Array(2).fill('2022-02-03T04:05:06.789Z'),
      ...Array(3).fill('2021-01-01T00:00:00.000Z'),
      ...Array(2).fill('2020-06-01T12:00:00.500Z'),
    ]);
    expect([...times].sort().reverse()).toEqual(times);
  });

  it('moves a conversation that gets a new message to the top', async () => {
    const last = expected[expected.length - 1]!;
    await postMessage(client, last, 'bump');
    const res = await client.get('/api/conversations?limit=1');
    expect(res.body.conversations[0].id).toBe(last);
    expect(res.body.conversations[0].lastSeq).toBe(1);
    const { ids } = await pageThrough(client, 3);
    expect(ids).toEqual([last, ...expected.slice(0, -1)]);
  });

  it('uses limit 20 by default and refuses limits outside 1..100 and forged cursors', async () => {
    const other = api(gw.url, gw.tokenFor('page-many'));
    for (let i = 0; i < 21; i++) await createConversation(other, `m${i}`);
    const first = await other.get('/api/conversations');
    expect(first.body.conversations).toHaveLength(20);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    for (const q of [
      'limit=0',
      'limit=101',
      'limit=-1',
      'limit=abc',
      'limit=1.5',
      'cursor=not-a-cursor',
      `cursor=${Buffer.from('x|y').toString('base64url')}`,
    ]) {
      expectError(await other.get(`/api/conversations?${q}`), 400, 'VALIDATION');
    }
  });
});

describe('history paging', () => {
  let client: Api;
  const history = (id: string, qs = '') => client.get(`/api/conversations/${id}/messages${qs}`);
  const seqs = (res: { body: { messages: { seq: number }[] } }) => res.body.messages.map((m) => m.seq);
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  beforeAll(() => {
    client = api(gw.url, gw.tokenFor('history-user'));
  });

  it('an empty conversation answers no messages and no more, whichever way it is asked', async () => {
    const c = await createConversation(client, 'empty');
    for (const qs of ['', '?limit=1', '?before=1', '?after=0', '?before=100&limit=5']) {
      const res = await history(c.id, qs);
      expect(res.status, qs).toBe(200);
      expect(res.body.messages, qs).toEqual([]);
      expect(res.body.hasMore, qs).toBe(false);
      expect(res.body.conversation).toMatchObject({ id: c.id, lastSeq: 0 });
    }
  });

  it('latest: exactly limit messages has no more; limit + 1 has more and drops the oldest', async () => {
    const exact = await createConversation(client, 'exact');
    for (let i = 1; i <= 5; i++) await postMessage(client, exact.id, `e${i}`);
    const all = await history(exact.id, '?limit=5');
    expect(seqs(all)).toEqual([1, 2, 3, 4, 5]);
    expect(all.body.hasMore).toBe(false);
    expect(all.body.messages.map((m: { content: string }) => m.content)).toEqual(['e1', 'e2', 'e3', 'e4', 'e5']);

    await postMessage(client, exact.id, 'e6');
    const latest = await history(exact.id, '?limit=5');
    expect(seqs(latest)).toEqual([2, 3, 4, 5, 6]);
    expect(latest.body.hasMore).toBe(true);
    expect(latest.body.conversation.lastSeq).toBe(6);
  });

  describe('on a conversation of 12 messages', () => {
    let id: string;
    beforeAll(async () => {
      id = (await createConversation(client, 'twelve')).id;
      for (let i = 1; i <= 12; i++) await postMessage(client, id, `t${i}`, `twelve-${i}`);
    });

    it('defaults to the latest 50, ascending, with every field of the contract', async () => {
      const res = await history(id);
      expect(seqs(res)).toEqual(range(1, 12));
      expect(res.body.hasMore).toBe(false);
      expect(Object.keys(res.body).sort()).toEqual(['conversation', 'hasMore', 'messages']);
      expect(res.body.messages[0]).toEqual({
        id: expect.any(String),
        conversationId: id,
        seq: 1,
        role: 'user',
        status: 'complete',
        content: 't1',
        // What is recorded of the client that sent it (fetch's user agent here).
        metadata: { client: { userAgent: expect.any(String) } },
        clientMessageId: 'twelve-1',
        createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        updatedAt: expect.stringMatching(/Z$/),
      });
    });

    it('before pages back through older messages until there are none', async () => {
      const p1 = await history(id, '?limit=5');
      expect([seqs(p1), p1.body.hasMore]).toEqual([range(8, 12), true]);
      const p2 = await history(id, `?limit=5&before=${p1.body.messages[0].seq}`);
      expect([seqs(p2), p2.body.hasMore]).toEqual([range(3, 7), true]);
      const p3 = await history(id, `?limit=5&before=${p2.body.messages[0].seq}`);
      expect([seqs(p3), p3.body.hasMore]).toEqual([[1, 2], false]);
      // Exactly `limit` older ones left: all of them, and no more.
      const p4 = await history(id, '?limit=5&before=6');
      expect([seqs(p4), p4.body.hasMore]).toEqual([range(1, 5), false]);
      const first = await history(id, '?before=1');
      expect([seqs(first), first.body.hasMore]).toEqual([[], false]);
      const beyond = await history(id, '?limit=3&before=1000');
      expect([seqs(beyond), beyond.body.hasMore]).toEqual([[10, 11, 12], true]);
    });

    it('after gives the first limit messages past it, for what a tab missed', async () => {
      const a0 = await history(id, '?after=0&limit=5');
      expect([seqs(a0), a0.body.hasMore]).toEqual([range(1, 5), true]);
      const a5 = await history(id, '?after=5&limit=5');
      expect([seqs(a5), a5.body.hasMore]).toEqual([range(6, 10), true]);
      const exact = await history(id, '?after=7&limit=5');
      expect([seqs(exact), exact.body.hasMore]).toEqual([range(8, 12), false]);
      const tail = await history(id, '?after=10&limit=5');
      expect([seqs(tail), tail.body.hasMore]).toEqual([[11, 12], false]);
      const caughtUp = await history(id, '?after=12');
      expect([seqs(caughtUp), caughtUp.body.hasMore]).toEqual([[], false]);
      const ahead = await history(id, '?after=99');
      expect([seqs(ahead), ahead.body.hasMore]).toEqual([[], false]);
    });

    it('limit 1 and limit 200 are the edges of what is accepted', async () => {
      const one = await history(id, '?limit=1');
      expect([seqs(one), one.body.hasMore]).toEqual([[12], true]);
      const max = await history(id, '?limit=200');
      expect([seqs(max), max.body.hasMore]).toEqual([range(1, 12), false]);
      for (const q of ['limit=0', 'limit=201', 'limit=x', 'before=-1', 'after=-1', 'after=abc', 'before=1.5']) {
        expectError(await history(id, `?${q}`), 400, 'VALIDATION');
      }
    });
  });
});
