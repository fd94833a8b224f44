// Per-room Redis subscriptions (the sharded adapter, REDIS_SUBSCRIPTION_MODE): a node subscribes to the channel of
// each user it holds a tab of and hears nothing of the others' users (static mode: every node hears everything);
// a tab whose channel is subscribed as it joins, in the middle of a burst, gets what follows live and ends up with
// every message; a node
// whose Redis connection is away neither crashes nor queues its subscriptions, and subscribes every one again once
// Redis is back, in steps that leave the event loop free between them.
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.ts';
import { createMetrics, type Metrics } from '../../src/observability/metrics.ts';
import { RESUBSCRIBE_BATCH } from '../../src/realtime/redis-subscriptions.ts';
import { createRedisClients } from '../../src/realtime/redis.ts';
import { userRoom, type ConversationDto } from '../../src/shared/events.ts';
import { REDIS_URL, startCluster, testRedisPrefix, type Cluster } from '../helpers/cluster.ts';
import { awaitConvergence, checkIntegrity, closeTabs, follow, Ledger, openTab, until, type FaultUser } from '../helpers/convergence.ts';
import { closeAllTabs, connectTab } from '../helpers/sockets.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

const admin = new Redis(REDIS_URL);
const clusters: Cluster[] = [];
afterAll(async () => {
  closeAllTabs();
  await Promise.allSettled(clusters.map((c) => c.close()));
  admin.disconnect();
});

async function shardedCluster(mode: 'dynamic' | 'static', nodeEnv: Record<string, string>[] = []): Promise<Cluster> {
  const cluster = await startCluster({ nodes: 2, env: { REDIS_ADAPTER: 'sharded', REDIS_SUBSCRIPTION_MODE: mode }, nodeEnv });
  clusters.push(cluster);
  return cluster;
}

/** The channel of a user's room, as the sharded adapter names it. */
const channelOf = (userId: string) => `${testRedisPrefix()}#/chat#${userRoom(userId)}#`;
/** How many connections Redis has subscribed to a shard channel. */
async function subscribers(channel: string): Promise<number> {
  const reply = (await admin.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
  return Number(reply[1]);
}
async function counter(metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }, labels = {}) {
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
}
const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');

describe.each(['dynamic', 'static'] as const)('REDIS_SUBSCRIPTION_MODE=%s', (mode) => {
  it(`a node ${mode === 'dynamic' ? 'hears nothing' : 'hears everything'} of a user it holds no tab of`, async () => {
    const cluster = await shardedCluster(mode);
    const [A, B] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
    const alice = cluster.user('alice');
    const bob = cluster.user('bob');
    const aliceOnA = await connectTab(A.url, cluster.tokenFor(alice), { name: 'alice@A' });
    const bobOnA = await connectTab(A.url, cluster.tokenFor(bob), { name: 'bob@A' });
    const bobOnB = await connectTab(B.url, cluster.tokenFor(bob), { name: 'bob@B' });
    const { conversation } = await bobOnA.ok('conversation:create', { title: 'probe' });
    await bobOnB.waitFor<{ conversation: ConversationDto }>('conversation:created', (p) => p.conversation.id === conversation.id);
    if (mode === 'dynamic') {
      expect(await subscribers(channelOf(alice))).toBe(1);
      expect(await subscribers(channelOf(bob))).toBe(2);
    } else {
      expect(await subscribers(channelOf(alice))).toBe(0);
    }

    const heardOnB = await counter(B.gateway.metrics.redisMessagesReceived);
    const publishedOnA = await counter(A.gateway.metrics.redisPublishes, { kind: 'broadcast' });
    // Alice's messages and their replies: dozens of broadcasts from node A, for a user node B holds nothing of.
    for (let i = 0; i < 6; i++) {
      const { message } = await aliceOnA.ok('message:send', { content: words(40), clientMessageId: `sub-${mode}-${i}` });
      await aliceOnA.replyEnd((await aliceOnA.replyStart(message.id)).id);
    }
    // Then one broadcast for bob: Redis delivers a publisher's messages in order, so once bob's tab on B has it,
    // B has received everything A published before it that it was going to receive.
    await bobOnA.ok('conversation:rename', { conversationId: conversation.id, title: 'probe 2' });
    await bobOnB.waitFor<{ conversation: ConversationDto }>('conversation:updated', (p) => p.conversation.title === 'probe 2');
    const aliceBroadcasts = (await counter(A.gateway.metrics.redisPublishes, { kind: 'broadcast' })) - publishedOnA - 1;
    const heard = (await counter(B.gateway.metrics.redisMessagesReceived)) - heardOnB;
    expect(aliceBroadcasts).toBeGreaterThanOrEqual(30);
    if (mode === 'dynamic') expect(heard).toBeLessThan(aliceBroadcasts / 4);
    else expect(heard).toBeGreaterThan(aliceBroadcasts);

    // The channel is held while the user has a tab on the node, and let go with the last one.
    if (mode === 'dynamic') {
      const aliceOnB = await connectTab(B.url, cluster.tokenFor(alice), { name: 'alice@B' });
      expect(await subscribers(channelOf(alice))).toBe(2);
      aliceOnB.close();
      await expectEventually(async () => (await subscribers(channelOf(alice))) === 1, 'B to let go of alice');
    }
  });
});

async function expectEventually(check: () => Promise<boolean>, what: string) {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the window between joining and the channel being subscribed', () => {
  it('a tab that opens on another node in the middle of a burst ends up with every message', async () => {
    const cluster = await shardedCluster('dynamic');
    const ledger = new Ledger();
    const id = cluster.user('burst');
    const user: FaultUser = { id, token: cluster.tokenFor(id), tabs: [], conversations: [] };
    const first = await openTab(cluster, user, 0);
    const started = await ledger.send(first, { content: 'the burst starts' });
    const conversationId = started.acked!.conversationId;
    user.conversations.push(conversationId);
    // Sends one after another from the tab on node A, from before the tab on node B (the user's first there) connects
    // until ten sends after it has opened the conversation: what it gets from then on comes only through its
    // node's subscription to the user's channel.
    let sentWhenOpened: number | undefined;
    const burst = (async () => {
      // Bounded, should the tab never open.
      for (let i = 0; i < 300 && (sentWhenOpened === undefined || i < sentWhenOpened + 10); i++) {
        await ledger.send(first, { conversationId, content: `burst ${i} ${words(5)}` });
      }
    })();
    await until(() => ledger.records.filter((r) => r.acked).length >= 6, 'the burst to be under way');
    const late = await openTab(cluster, user, 1);
    // What reaches it live, not through a catch-up read.
    const live = new Set<string>();
    late.chat.socket.on('message:created', (p) => live.add(p.message.id));
    await follow(late, conversationId);
    sentWhenOpened = ledger.records.length;
    await burst;
    const stored = 2 * ledger.records.length;
    const sentAfter = ledger.records.slice(sentWhenOpened);
    expect(sentAfter.length).toBeGreaterThanOrEqual(9);
    try {
      const convergence = await awaitConvergence(cluster.db, [user], ledger, performance.now());
      expect(convergence.problems).toEqual([]);
      const integrity = await checkIntegrity(cluster.db, [user], ledger);
      expect(integrity.problems).toEqual([]);
      expect(late.chat.messages(conversationId)).toHaveLength(stored);
      // Once it agrees with the database, every message sent after it opened has reached it live (each is sent to
      // the tabs after its acknowledgement, so the last may come after the burst's end).
      expect(sentAfter.filter((r) => !live.has(r.acked!.id)).map((r) => r.content)).toEqual([]);
    } finally {
      closeTabs([user]);
    }
  });
});

describe('a node whose Redis is away', () => {
  it('keeps no queue of subscriptions, survives the joins and leaves meanwhile, and subscribes again when Redis is back', async () => {
    const proxy = await startTcpProxy({ host: new URL(REDIS_URL).hostname, port: Number(new URL(REDIS_URL).port || 6379) });
    try {
      const cluster = await shardedCluster('dynamic', [{}, { REDIS_URL: proxy.wrap(REDIS_URL), SYNC_SPREAD_MS: '0' }]);
      const [A, B] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
      const carol = cluster.user('carol');
      const dave = cluster.user('dave');
      const carolOnA = await connectTab(A.url, cluster.tokenFor(carol), { name: 'carol@A' });
      proxy.cut();
      await expectEventually(async () => (await counter(B.gateway.metrics.redisConnected, { client: 'sub' })) === 0, 'B to see Redis gone');
      // Joins and leaves while the subscriber is away: rooms created and deleted, nothing sent to Redis.
      const carolOnB = await connectTab(B.url, cluster.tokenFor(carol), { name: 'carol@B' });
      const daveOnB = await connectTab(B.url, cluster.tokenFor(dave), { name: 'dave@B' });
      daveOnB.close();
      expect(await subscribers(channelOf(carol))).toBe(1);
      proxy.restore();
      // Subscribed again (what B holds: carol's room, and its own two channels per namespace), and told to catch up.
      await expectEventually(async () => (await counter(B.gateway.metrics.redisResubscriptions)) === 5, 'B to subscribe again');
      await carolOnB.waitFor('sync:required');
      expect(await subscribers(channelOf(carol))).toBe(2);
      expect(await subscribers(channelOf(dave))).toBe(0);
      // And live again: carol's send on A reaches her tab on B.
      const { message } = await carolOnA.ok('message:send', { content: 'after the outage', clientMessageId: 'sub-outage' });
      await carolOnB.waitFor<{ message: { id: string } }>('message:created', (p) => p.message.id === message.id);
    } finally {
      await proxy.close();
    }
  });

  it('subscribes 20,000 channels again a step at a time, the event loop turning between steps', async () => {
    const proxy = await startTcpProxy({ host: new URL(REDIS_URL).hostname, port: Number(new URL(REDIS_URL).port || 6379) });
    const metrics: Metrics = createMetrics('resubscribe-test');
    const prefix = `${testRedisPrefix()}-many`;
    const clients = createRedisClients(proxy.wrap(REDIS_URL), {
      commandTimeoutMs: 2000,
      prefix,
      sharded: true,
      log: createLogger('silent'),
      metrics,
    });
    const received: string[] = [];
    clients.sub.on('smessageBuffer', (channel: Buffer) => received.push(channel.toString()));
    const channels = Array.from({ length: 20_000 }, (_, i) => `${prefix}#/chat#room-${i}#`);
    const held = async () => ((await admin.call('PUBSUB', 'SHARDCHANNELS', `${prefix}#*`)) as string[]).length;
    try {
      await expectEventually(async () => clients.sub.status === 'ready', 'the subscriber to connect');
      for (const c of channels) void clients.sub.ssubscribe(c);
      await expectEventually(async () => (await held()) === 20_000, 'Redis to hold 20,000 channels');

      proxy.cut();
      await expectEventually(async () => clients.sub.status !== 'ready', 'the subscriber to lose Redis');
      // Leaves while away: not sent, and not subscribed again.
      for (const c of channels.slice(0, 1000)) void clients.sub.sunsubscribe(c);
      expect(await counter(metrics.redisSubscriptions)).toBe(19_000);
      // Sampled on every turn of the event loop: how many commands wait for Redis's answer at once.
      let turns = 0;
      let mostInFlight = 0;
      let turning = true;
      const sub = clients.sub as Redis;
      const turn = () => {
        turns++;
        mostInFlight = Math.max(mostInFlight, sub.commandQueue.length);
        if (turning) setImmediate(turn);
      };
      proxy.restore();
      setImmediate(turn);
      await expectEventually(async () => (await counter(metrics.redisResubscriptions)) === 19_000, 'every channel subscribed again');
      turning = false;
      expect(turns).toBeGreaterThanOrEqual(19_000 / RESUBSCRIBE_BATCH);
      expect(mostInFlight).toBeGreaterThan(0);
      expect(mostInFlight).toBeLessThanOrEqual(RESUBSCRIBE_BATCH);
      expect(await held()).toBe(19_000);
      await admin.call('SPUBLISH', channels[19_999]!, 'hello');
      await admin.call('SPUBLISH', channels[0]!, 'not for us');
      await admin.call('SPUBLISH', channels[1000]!, 'hello');
      await expectEventually(async () => received.length >= 2, 'the publishes to arrive');
      expect(received).toEqual([channels[19_999], channels[1000]]);
    } finally {
      await clients.close();
      await proxy.close();
    }
  });
});
