// REDIS_ADAPTER=sharded: the same fan-out across nodes as the classic adapter, over Redis 7's sharded pub/sub
// (SPUBLISH): a message and its reply reach the user's tabs on both nodes, a stop crosses nodes, and another user's
// tab gets nothing.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationDto, MessageDto } from '../../src/shared/events.ts';
import { REDIS_URL, startCluster, testRedisPrefix, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectTab, joinDeltas } from '../helpers/sockets.ts';

let cluster: Cluster;
let A: string;
let B: string;

beforeAll(async () => {
  // 50 ms a word: a 40-word reply streams for about 2 s, time enough to stop it from the other node.
  cluster = await startCluster({ nodes: 2, env: { REDIS_ADAPTER: 'sharded', ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '50' } });
  [A, B] = cluster.nodes.map((n) => n.url) as [string, string];
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

describe('with the sharded adapter', () => {
  it('runs on sharded channels of its own prefix, not classic ones', async () => {
    const redis = new Redis(REDIS_URL);
    try {
      const sharded = (await redis.call('PUBSUB', 'SHARDCHANNELS', `${testRedisPrefix()}*`)) as string[];
      expect(sharded.length).toBeGreaterThan(0);
      expect((await redis.call('PUBSUB', 'CHANNELS', `${testRedisPrefix()}*`)) as string[]).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });

  it("a message and its reply reach the user's tab on the other node; another user's tabs get nothing", async () => {
    const user = cluster.user('sharded');
    const other = cluster.user('sharded-other');
    const onA = await connectTab(A, cluster.tokenFor(user), { name: 'A' });
    const onB = await connectTab(B, cluster.tokenFor(user), { name: 'B' });
    const otherOnA = await connectTab(A, cluster.tokenFor(other), { name: 'other@A' });
    const otherOnB = await connectTab(B, cluster.tokenFor(other), { name: 'other@B' });

    const sent = await onA.ok('message:send', { content: 'across shards', clientMessageId: 'sharded-1' });
    const created = await onB.waitFor<{ message: MessageDto }>('message:created', (p) => p.message.id === sent.message.id);
    expect(created.message).toEqual(sent.message);
    const start = await onB.replyStart(sent.message.id);
    const end = await onB.replyEnd(start.id);
    expect(end).toMatchObject({ status: 'complete', content: 'Echo: across shards' });
    expect(joinDeltas(onB.deltas(start.id))).toBe(end.content);
    expect(await onA.replyEnd(start.id)).toEqual(end);

    // And from B to A.
    const back = await onB.ok('message:send', { conversationId: sent.conversation.id, content: 'and back', clientMessageId: 'sharded-2' });
    await onA.waitFor('message:created', (p: { message: MessageDto }) => p.message.id === back.message.id);

    // Barriers: the other user's own writes on each node, made after all of the first user's; once both of their
    // tabs have both, anything of the first user's sent to them would have arrived before.
    const barriers = [
      await otherOnB.ok('conversation:create', { title: 'barrier B' }),
      await otherOnA.ok('conversation:create', { title: 'barrier A' }),
    ];
    for (const tab of [otherOnA, otherOnB]) {
      for (const b of barriers) {
        await tab.waitFor('conversation:created', (p: { conversation: ConversationDto }) => p.conversation.id === b.conversation.id);
      }
      expect(tab.events.map((e) => e.event)).toEqual(['conversation:created', 'conversation:created']);
    }
  });

  it('assistant:stop from a tab on the other node stops the reply where it runs', async () => {
    const user = cluster.user('sharded-stop');
    const onA = await connectTab(A, cluster.tokenFor(user), { name: 'A' });
    const onB = await connectTab(B, cluster.tokenFor(user), { name: 'B' });
    const words = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
    const sent = await onA.ok('message:send', { content: words, clientMessageId: 'sharded-stop-1' });
    const start = await onA.replyStart(sent.message.id);
    await onB.waitForCount('message:delta', 2, (d: { messageId: string }) => d.messageId === start.id);
    const { message: stopped } = await onB.ok('assistant:stop', { conversationId: start.conversationId, messageId: start.id });
    expect(stopped.status).toBe('stopped');
    for (const tab of [onA, onB]) expect(await tab.replyEnd(start.id)).toEqual(stopped);
    const [row] = await cluster.db.query<{ status: string; content: string }>('select status, content from messages where id = $1', [
      start.id,
    ]);
    expect(row).toEqual({ status: 'stopped', content: stopped.content });
    for (const node of cluster.nodes) expect(node.gateway.assistant.runningCount).toBe(0);
  });
});
