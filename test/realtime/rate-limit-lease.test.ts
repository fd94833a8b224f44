// Leased allowances (RATE_LIMIT_LEASE): a node takes a share of a user's send allowance from Redis at once and
// spends it locally. Shown against the real Redis with two nodes: Redis holds the points leased (one lease, not one
// round trip per send), the allowance is never exceeded whichever nodes the sends reach, all of it is reachable
// from one node, and a user spread over two nodes loses at most one lease of it.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, startCluster, testRedisPrefix, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectTab, type Tab } from '../helpers/sockets.ts';

const LIMIT = 40;
/** RATE_LIMIT_LEASE 0.25 of 40. */
const LEASE = 10;

let cluster: Cluster;
let redis: Redis;

beforeAll(async () => {
  cluster = await startCluster({
    nodes: 2,
    env: {
      ASSISTANT: 'none',
      SEND_RATE_LIMIT: String(LIMIT),
      SEND_RATE_WINDOW_S: '60',
      READ_RATE_LIMIT: String(LIMIT),
      READ_RATE_WINDOW_S: '60',
      RATE_LIMIT_LEASE: '0.25',
    },
  });
  redis = new Redis(REDIS_URL);
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  redis?.disconnect();
  await cluster?.close();
});

/** What Redis counts against the user's send allowance in this window. */
const counted = async (user: string, budget = 'send') => Number((await redis.get(`${testRedisPrefix()}:rl:${budget}:${user}`)) ?? 0);

async function sendAll(tabs: Tab[], count: number, tag: string): Promise<boolean[]> {
  const { conversation } = await tabs[0]!.ok('conversation:create', {});
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const ack = await tabs[i % tabs.length]!.request('message:send', {
        conversationId: conversation.id,
        content: `${tag} ${i}`,
        clientMessageId: `${tag}-${i}`,
      });
      if (!ack.ok) expect(ack.error.code).toBe('RATE_LIMITED');
      return ack.ok;
    }),
  );
}

describe('send allowance leased by the nodes', () => {
  it('one node: a lease is taken from Redis at once, then spent locally; the whole allowance and no more', async () => {
    const user = cluster.user('lease');
    const tab = await connectTab(cluster.nodes[0]!.url, cluster.tokenFor(user));
    const { conversation } = await tab.ok('conversation:create', {});
    const send = (i: number) =>
      tab.request('message:send', { conversationId: conversation.id, content: `m${i}`, clientMessageId: `one-${i}` });

    for (let i = 0; i < 3; i++) expect((await send(i)).ok).toBe(true);
    // Three sends, one lease: Redis was asked once.
    expect(await counted(user)).toBe(LEASE);
    for (let i = 3; i < LIMIT; i++) expect((await send(i)).ok).toBe(true);
    expect(await counted(user)).toBe(LIMIT);
    const refused = await send(LIMIT);
    expect(refused).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED', retryAfterMs: expect.any(Number) } });
    const [{ count }] = await cluster.db.query<{ count: string }>('select count(*) from messages where user_id = $1', [user]);
    expect(Number(count)).toBe(LIMIT);
  });

  it('tabs on both nodes, sends at once: never above the allowance, at most one lease short of it', async () => {
    const user = cluster.user('lease-two');
    const token = cluster.tokenFor(user);
    const tabs = [await connectTab(cluster.nodes[0]!.url, token), await connectTab(cluster.nodes[1]!.url, token)];
    const accepted = (await sendAll(tabs, LIMIT + 20, 'two')).filter(Boolean).length;
    expect(accepted).toBeLessThanOrEqual(LIMIT);
    expect(accepted).toBeGreaterThanOrEqual(LIMIT - LEASE);
    const [{ count }] = await cluster.db.query<{ count: string }>('select count(*) from messages where user_id = $1', [user]);
    expect(Number(count)).toBe(accepted);
  });

  it('commands of several points spend what is left of a lease first: the whole allowance stays reachable', async () => {
    // A history page of 200 messages costs 4 read points, a list 1. With leases of 10, a page arriving when 1 point
    // of the lease is left must take 3 more, not a fresh 10 beside the stranded 1.
    const user = cluster.user('lease-mixed');
    const tab = await connectTab(cluster.nodes[0]!.url, cluster.tokenFor(user));
    const { conversation } = await tab.ok('conversation:create', {});
    const page = () => tab.request('history:get', { conversationId: conversation.id, limit: 200 });
    const list = () => tab.request('conversation:list', {});

    let spent = 0;
    expect((await list()).ok).toBe(true);
    spent += 1;
    while ((await page()).ok) spent += 4;
    // 1 + 9 × 4 = 37: a tenth page would pass the allowance of 40.
    expect(spent).toBe(37);
    // The 3 points left are still this user's, for cheaper commands.
    for (let i = 0; i < 3; i++) expect((await list()).ok).toBe(true);
    expect(await list()).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
    expect(await counted(user, 'read')).toBeLessThanOrEqual(LIMIT + 4);
  });
});
