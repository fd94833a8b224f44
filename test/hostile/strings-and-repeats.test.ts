// Strings that are not well-formed Unicode are refused at the edge (a lone surrogate is stored as U+FFFD, so an
// idempotency key would never be found again), and an idempotent repeat neither rolls back the batch it lands in
// nor comes free.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, createConversation, expectError } from '../helpers/api.ts';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectTab } from '../helpers/sockets.ts';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 1, env: { ASSISTANT: 'none', SEND_RATE_LIMIT: '30', SEND_RATE_WINDOW_S: '60' } });
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

const LONE = '\uD83D';

/** chat_append_batches_total by outcome, read from the node's /metrics. */
async function batchOutcomes(): Promise<Record<string, number>> {
  const text = await (await fetch(`${cluster.nodes[0]!.url}/metrics`)).text();
  return Object.fromEntries(
    [...text.matchAll(/^chat_append_batches_total\{[^}]*outcome="(\w+)"[^}]*\} (\d+)/gm)].map((m) => [m[1], Number(m[2])]),
  );
}

describe('well-formed strings', () => {
  it('refuses a lone surrogate in content, clientMessageId and title, on the socket and over REST, storing nothing', async () => {
    const user = cluster.user('unicode');
    const tab = await connectTab(cluster.nodes[0]!.url, cluster.tokenFor(user));
    const rest = api(cluster.nodes[0]!.url, cluster.tokenFor(user));
    const c = await createConversation(rest, 'ok');
    const attempts = [
      tab.request('message:send', { conversationId: c.id, content: `half ${LONE} an emoji`, clientMessageId: 'u-1' }),
      tab.request('message:send', { conversationId: c.id, content: 'fine', clientMessageId: `key-${LONE}` }),
      tab.request('conversation:rename', { conversationId: c.id, title: `t${LONE}` }),
      tab.request('conversation:create', { title: `t${LONE}` }),
    ];
    for (const ack of await Promise.all(attempts)) {
      expect(ack.ok ? 'ok' : ack.error.code).toBe('VALIDATION');
      if (!ack.ok) expect(ack.error.message).toMatch(/well-formed/);
    }
    expectError(await rest.post(`/api/conversations/${c.id}/messages`, { content: `x${LONE}` }), 400, 'VALIDATION');
    expectError(await rest.post(`/api/conversations/${c.id}/messages`, { content: 'x', clientMessageId: `k${LONE}` }), 400, 'VALIDATION');
    expect(await cluster.db.query('select id from messages where user_id = $1', [user])).toEqual([]);
    // Whole emoji are fine.
    await tab.ok('message:send', { conversationId: c.id, content: 'a whole \u{1F600}', clientMessageId: 'u-2' });
  });
});

describe('idempotent repeats', () => {
  it('are answered with the stored message without rolling back the batch they share with other sends', async () => {
    const user = cluster.user('repeater');
    const other = cluster.user('neighbour');
    const tab = await connectTab(cluster.nodes[0]!.url, cluster.tokenFor(user));
    const neighbour = await connectTab(cluster.nodes[0]!.url, cluster.tokenFor(other));
    const { conversation } = await tab.ok('conversation:create', { title: 'repeats' });
    const mine = await neighbour.ok('conversation:create', { title: 'mine' });
    const first = await tab.ok('message:send', { conversationId: conversation.id, content: 'once', clientMessageId: 'r-1' });
    const before = await batchOutcomes();
    // Repeats and fresh sends of another user, all at once, so they share batches.
    const [repeats, fresh] = await Promise.all([
      Promise.all(
        Array.from({ length: 5 }, () =>
          tab.ok('message:send', { conversationId: conversation.id, content: 'once', clientMessageId: 'r-1' }),
        ),
      ),
      Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          neighbour.ok('message:send', { conversationId: mine.conversation.id, content: `fresh ${i}`, clientMessageId: `n-${i}` }),
        ),
      ),
    ]);
    for (const r of repeats) expect(r.message.id).toBe(first.message.id);
    expect(fresh.map((f) => f.message.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    const after = await batchOutcomes();
    // Batches that met the stored key wrote nothing and were written again: none failed and rolled back.
    expect((after.conflict ?? 0) - (before.conflict ?? 0)).toBe(0);
    expect((after.failed ?? 0) - (before.failed ?? 0)).toBe(0);
    expect((after.repeated_key ?? 0) - (before.repeated_key ?? 0)).toBeGreaterThan(0);
    expect(await cluster.db.query('select seq from messages where user_id = $1', [user])).toHaveLength(1);
  });

  it('cost a send each: a client that repeats forever runs out of its allowance', async () => {
    const user = cluster.user('looper');
    const tab = await connectTab(cluster.nodes[0]!.url, cluster.tokenFor(user));
    const first = await tab.ok('message:send', { content: 'the same, over and over', clientMessageId: 'loop' });
    const codes: string[] = [];
    for (let i = 0; i < 40; i++) {
      const ack = await tab.request('message:send', {
        conversationId: first.conversation.id,
        content: 'the same, over and over',
        clientMessageId: 'loop',
      });
      codes.push(ack.ok ? 'ok' : ack.error.code);
    }
    // 30 sends per window: the first and 29 repeats, then refusals.
    expect(codes.filter((c) => c === 'ok')).toHaveLength(29);
    expect(codes.slice(29).every((c) => c === 'RATE_LIMITED')).toBe(true);
  });
});
