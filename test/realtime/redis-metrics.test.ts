// What /metrics says of a node's Redis traffic, with either adapter: publishes by kind (a broadcast to a user's
// tabs, a question to every node and the answers to it), what each node received, and the channels it holds.
import { afterAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectTab } from '../helpers/sockets.ts';

const clusters: Cluster[] = [];
afterAll(async () => {
  closeAllTabs();
  await Promise.allSettled(clusters.map((c) => c.close()));
});

/** One sample of a node's /metrics, read as Prometheus would. */
async function sample(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const has = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => has[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

describe.each(['classic', 'sharded'] as const)('REDIS_ADAPTER=%s', (adapter) => {
  it('counts publishes by kind, what each node received, and the channels it holds', async () => {
    const cluster = await startCluster({ nodes: 2, env: { REDIS_ADAPTER: adapter } });
    clusters.push(cluster);
    const [A, B] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
    const user = cluster.user('metrics');
    const onA = await connectTab(A.url, cluster.tokenFor(user), { name: 'A' });
    const onB = await connectTab(B.url, cluster.tokenFor(user), { name: 'B' });
    const before = {
      broadcasts: await sample(A.url, 'chat_redis_publishes_total', { kind: 'broadcast' }),
      requests: await sample(A.url, 'chat_redis_publishes_total', { kind: 'request' }),
      responses: await sample(B.url, 'chat_redis_publishes_total', { kind: 'response' }),
      received: await sample(B.url, 'chat_redis_messages_received_total'),
      bytes: await sample(B.url, 'chat_redis_bytes_received_total'),
    };

    // A broadcast from A to the user's tabs, which B hears for its own tab.
    const { conversation } = await onA.ok('conversation:create', { title: 'counted' });
    await onB.waitFor('conversation:created', (p: { conversation: { id: string } }) => p.conversation.id === conversation.id);
    // A question from A to every node (which replies run there?), answered by B.
    expect(await A.gateway.fanout.runningElsewhere!()).toEqual([]);

    expect(await sample(A.url, 'chat_redis_publishes_total', { kind: 'broadcast' })).toBeGreaterThan(before.broadcasts);
    expect(await sample(A.url, 'chat_redis_publishes_total', { kind: 'request' })).toBeGreaterThan(before.requests);
    expect(await sample(B.url, 'chat_redis_publishes_total', { kind: 'response' })).toBeGreaterThan(before.responses);
    // B heard at least the broadcast and the question, and their bytes.
    expect(await sample(B.url, 'chat_redis_messages_received_total')).toBeGreaterThanOrEqual(before.received + 2);
    expect(await sample(B.url, 'chat_redis_bytes_received_total')).toBeGreaterThan(before.bytes + 100);
    // Classic: per namespace, a pattern and its request and two response channels. Sharded (dynamic): per namespace
    // its channel and its response channel, and the user's room.
    const held = await sample(B.url, 'chat_redis_subscriptions');
    expect(held).toBe(adapter === 'classic' ? 8 : 5);
    onB.close();
    if (adapter === 'sharded') {
      await expect.poll(() => sample(B.url, 'chat_redis_subscriptions'), { timeout: 10_000 }).toBe(4);
    }
  });
});
