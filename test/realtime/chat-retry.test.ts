// POST /api/chat repeated with the same Idempotency-Key while the first request's reply still streams on
// another node: the repeat waits for that reply and answers with its whole text (or 504 once CHAT_TIMEOUT_MS
// is spent), never with the text streamed so far. One user message and one reply are stored either way.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, expectError } from '../helpers/api.ts';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { CHECK_APP_NAME } from '../helpers/db.ts';

let cluster: Cluster;

beforeAll(async () => {
  // 40 ms a word: a 50-word reply streams for about 2 s. Whether the repeat comes while it streams is not left to
  // that: the test holds the reply's row locked, so the reply cannot end until the repeat has seen it streaming. The
  // write bound is far off so that the reply's saves wait for the lock rather than fail.
  cluster = await startCluster({ nodes: 2, env: { ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '40', WRITE_TIMEOUT_MS: '30000' } });
});
afterEach(async () => {
  vi.restoreAllMocks();
  for (const locker of lockers) await locker.end().catch(() => {});
  lockers.clear();
});
afterAll(async () => {
  await cluster?.close();
});

const WORDS = Array.from({ length: 50 }, (_, i) => `w${i}`).join(' ');
const lockers = new Set<pg.Client>();

async function replyRowsOf(user: string) {
  return cluster.db.query<{ role: string; status: string; content: string }>(
    `select role, status, content from messages where user_id = $1 order by seq`,
    [user],
  );
}

/**
 * Once the user's reply row exists and streams, locks it from a connection of the test's own: the reply can save
 * nothing and cannot end (its row stays `streaming`) until `release`.
 */
async function holdStreamingReply(user: string): Promise<{ release(): Promise<void> }> {
  await vi.waitFor(
    async () => expect((await replyRowsOf(user)).some((r) => r.role === 'assistant' && r.status === 'streaming')).toBe(true),
    { timeout: 20_000, interval: 10 },
  );
  const locker = new pg.Client({ connectionString: cluster.db.url, application_name: CHECK_APP_NAME });
  await locker.connect();
  lockers.add(locker);
  await locker.query('begin');
  const { rows } = await locker.query("select status from messages where user_id = $1 and role = 'assistant' for update", [user]);
  expect(rows).toEqual([{ status: 'streaming' }]);
  return { release: async () => void (await locker.query('commit')) };
}

/** Settles-tracking: whether a promise has settled yet. */
function tracked<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  const p = promise.finally(() => {
    done = true;
  });
  return { promise: p, settled: () => done };
}

describe('POST /api/chat repeated on another node while the reply streams', () => {
  it('waits for the reply and answers the whole of it, the same as the first request', async () => {
    const user = cluster.user('chat-retry');
    const [first, second] = cluster.nodes.map((n) => api(n.url, cluster.tokenFor(user)));
    const headers = { 'Idempotency-Key': 'retry-1' };
    const original = first!.post('/api/chat', { message: WORDS }, { headers });
    const held = await holdStreamingReply(user);
    // The node answering the repeat looks the reply up in the database while it streams elsewhere.
    const lookups = vi.spyOn(cluster.nodes[1]!.gateway.services.messages, 'find');
    const repeat = tracked(second!.post('/api/chat', { message: WORDS }, { headers }));
    // The repeat has found the reply still streaming, and waits.
    await vi.waitFor(
      () =>
        expect(
          lookups.mock.settledResults.some(
            (r) => r.type === 'fulfilled' && r.value?.role === 'assistant' && r.value.status === 'streaming',
          ),
        ).toBe(true),
      { timeout: 20_000, interval: 20 },
    );
    expect(repeat.settled()).toBe(false);
    await held.release();
    const answered = await original;
    const repeated = await repeat.promise;

    expect(answered.status, answered.text).toBe(200);
    expect(repeated.status, repeated.text).toBe(200);
    expect(answered.body.response).toBe(`Echo: ${WORDS}`);
    expect(repeated.body).toEqual(answered.body);
    expect(await replyRowsOf(user)).toEqual([
      { role: 'user', status: 'complete', content: WORDS },
      { role: 'assistant', status: 'complete', content: `Echo: ${WORDS}` },
    ]);
  });

  it('answers 504 TIMEOUT when the reply outlasts CHAT_TIMEOUT_MS, and the reply still completes', async () => {
    const impatient = await cluster.addNode({ CHAT_TIMEOUT_MS: '300' });
    const user = cluster.user('chat-retry-slow');
    const token = cluster.tokenFor(user);
    const headers = { 'Idempotency-Key': 'retry-2' };
    const original = api(cluster.nodes[0]!.url, token).post('/api/chat', { message: WORDS }, { headers });
    // Held until the impatient node has answered: the reply certainly outlasts its 300 ms.
    const held = await holdStreamingReply(user);
    expectError(await api(impatient.url, token).post('/api/chat', { message: WORDS }, { headers }), 504, 'TIMEOUT');
    await held.release();

    expect((await original).body.response).toBe(`Echo: ${WORDS}`);
    expect((await replyRowsOf(user)).map((r) => [r.role, r.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'complete'],
    ]);
  });
});
