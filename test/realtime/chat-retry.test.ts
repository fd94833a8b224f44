// POST /api/chat repeated with the same Idempotency-Key while the first request's reply still streams on
// another node: the repeat waits for that reply and answers with its whole text (or 504 once CHAT_TIMEOUT_MS
// is spent), never with the text streamed so far. One user message and one reply are stored either way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, expectError } from '../helpers/api.ts';
import { startCluster, type Cluster } from '../helpers/cluster.ts';

let cluster: Cluster;

beforeAll(async () => {
  // 40 ms a word: a 50-word reply streams for about 2 s, ample time to repeat the request meanwhile.
  cluster = await startCluster({ nodes: 2, env: { ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '40' } });
});
afterAll(async () => {
  await cluster?.close();
});

const WORDS = Array.from({ length: 50 }, (_, i) => `w${i}`).join(' ');

async function replyRowsOf(user: string) {
  return cluster.db.query<{ role: string; status: string; content: string }>(
    `select role, status, content from messages where user_id = $1 order by seq`,
    [user],
  );
}

/** Resolves once the user's reply row exists and is still streaming (the first request is mid-reply). */
async function untilReplyStreams(user: string) {
  for (let i = 0; i < 200; i++) {
    const rows = await replyRowsOf(user);
    if (rows.some((r) => r.role === 'assistant' && r.status === 'streaming')) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the reply never started streaming');
}

describe('POST /api/chat repeated on another node while the reply streams', () => {
  it('answers the whole reply, the same as the first request', async () => {
    const user = cluster.user('chat-retry');
    const [first, second] = cluster.nodes.map((n) => api(n.url, cluster.tokenFor(user)));
    const headers = { 'Idempotency-Key': 'retry-1' };
    const original = first!.post('/api/chat', { message: WORDS }, { headers });
    await untilReplyStreams(user);
    const repeat = await second!.post('/api/chat', { message: WORDS }, { headers });
    const answered = await original;

    expect(answered.status, answered.text).toBe(200);
    expect(repeat.status, repeat.text).toBe(200);
    expect(answered.body.response).toBe(`Echo: ${WORDS}`);
    expect(repeat.body).toEqual(answered.body);
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
    await untilReplyStreams(user);
    expectError(await api(impatient.url, token).post('/api/chat', { message: WORDS }, { headers }), 504, 'TIMEOUT');

    expect((await original).body.response).toBe(`Echo: ${WORDS}`);
    expect((await replyRowsOf(user)).map((r) => [r.role, r.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'complete'],
    ]);
  });
});
