// Every command has an allowance per user, on both doors and across nodes, and one socket cannot keep many
// commands in flight: a user who floods gets RATE_LIMITED (with retryAfterMs) rather than the node's time.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, createConversation, expectError } from '../helpers/api.ts';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectTab } from '../helpers/sockets.ts';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({
    nodes: 2,
    env: {
      WRITE_RATE_LIMIT: '5',
      WRITE_RATE_WINDOW_S: '60',
      READ_RATE_LIMIT: '10',
      READ_RATE_WINDOW_S: '60',
      REFRESH_RATE_LIMIT: '2',
      REFRESH_RATE_WINDOW_S: '60',
      MAX_INFLIGHT_PER_SOCKET: '4',
      ASSISTANT: 'none',
    },
  });
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

describe('allowances per user', () => {
  it('conversation writes: the 6th create in the window is RATE_LIMITED, counted across both nodes and both doors', async () => {
    const user = cluster.user('writer');
    const [a, b] = cluster.nodes;
    const tabA = await connectTab(a!.url, cluster.tokenFor(user));
    const rest = api(b!.url, cluster.tokenFor(user));
    for (let i = 0; i < 3; i++) await tabA.ok('conversation:create', { title: `socket ${i}` });
    for (let i = 0; i < 2; i++) await createConversation(rest, `rest ${i}`);
    const refused = await tabA.request('conversation:create', { title: 'one too many' });
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.error.code).toBe('RATE_LIMITED');
    expect(refused.error.retryAfterMs).toBeGreaterThan(0);
    const overRest = await rest.post('/api/conversations', { title: 'one too many' });
    expectError(overRest, 429, 'RATE_LIMITED');
    expect(Number(overRest.headers.get('retry-after'))).toBeGreaterThan(0);
    // Nothing of the refused writes was stored, and another user is not affected.
    const stored = await cluster.db.query('select id from conversations where user_id = $1', [user]);
    expect(stored).toHaveLength(5);
    await createConversation(api(a!.url, cluster.tokenFor(cluster.user('bystander'))), 'unaffected');
  });

  it('reads: history pages cost by their size (limit 200 = 4 points), lists 1, until the allowance of 10 is spent', async () => {
    const user = cluster.user('reader');
    const tab = await connectTab(cluster.nodes[0]!.url, cluster.tokenFor(user));
    const { conversation } = await tab.ok('conversation:create', { title: 'read me' });
    await tab.ok('history:get', { conversationId: conversation.id, limit: 200 });
    await tab.ok('history:get', { conversationId: conversation.id, limit: 200 });
    await tab.ok('conversation:list', {});
    await tab.ok('conversation:list', {});
    const big = await tab.request('history:get', { conversationId: conversation.id, limit: 200 });
    expect(big.ok ? 'ok' : big.error.code).toBe('RATE_LIMITED');
    // The same allowance over REST, on the other node.
    const rest = api(cluster.nodes[1]!.url, cluster.tokenFor(user));
    expectError(await rest.get(`/api/conversations/${conversation.id}/messages?limit=200`), 429, 'RATE_LIMITED');
  });

  it('token refreshes: the 3rd in the window is RATE_LIMITED', async () => {
    const user = cluster.user('refresher');
    const tab = await connectTab(cluster.nodes[0]!.url, cluster.tokenFor(user));
    await tab.ok('auth:refresh', { token: cluster.tokenFor(user) });
    await tab.ok('auth:refresh', { token: cluster.tokenFor(user) });
    const third = await tab.request('auth:refresh', { token: cluster.tokenFor(user) });
    expect(third.ok ? 'ok' : third.error.code).toBe('RATE_LIMITED');
  });
});

describe('commands in flight per socket', () => {
  it('past 4 at once, a socket is answered RATE_LIMITED at once, every command exactly once', async () => {
    const user = cluster.user('burst');
    const tab = await connectTab(cluster.nodes[0]!.url, cluster.tokenFor(user));
    // Sends to a conversation that does not exist: each takes a database round trip, and the send allowance of this
    // cluster is far from spent, so a refusal can only be the in-flight cap.
    const missing = '00000000-0000-7000-8000-000000000000';
    const acks = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        tab.request('message:send', { conversationId: missing, content: 'flood', clientMessageId: `flood-${i}` }),
      ),
    );
    const refused = acks.filter((a) => !a.ok && a.error.code === 'RATE_LIMITED');
    expect(refused.length).toBeGreaterThan(0);
    for (const a of refused) if (!a.ok) expect(a.error.message).toMatch(/in flight/);
    expect(acks.filter((a) => !a.ok && a.error.code === 'NOT_FOUND').length).toBe(40 - refused.length);
    // Every command was answered once: the refused at once, the others after their round trip.
    expect(acks).toHaveLength(40);
    for (const [id, count] of tab.ackPackets) expect({ id, count }).toEqual({ id, count: 1 });
    for (const a of acks) if (!a.ok && a.error.code === 'RATE_LIMITED') expect(a.error.retryAfterMs).toBeGreaterThan(0);
  });
});
