// Fan-out through a real Redis Cluster (REDIS_URL=redis+cluster://…, the sharded adapter in dynamic mode): each
// user's channel is subscribed on the master of its slot, by every node holding a tab of that user; and when one
// master is killed mid-traffic, its replica takes over, the nodes subscribe its channels there, nothing
// acknowledged is lost and every tab on both nodes agrees with the database afterwards.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { userRoom } from '../../src/shared/events.ts';
import { clusterEnv, startCluster, testRedisPrefix, type Cluster } from '../helpers/cluster.ts';
import { awaitConvergence, checkIntegrity, closeTabs, Ledger, setUpUsers, type SendRecord } from '../helpers/convergence.ts';
import { startRedisCluster, untilOk, type LocalRedisCluster } from '../helpers/redis-cluster.ts';

let redis: LocalRedisCluster;
let cluster: Cluster;

beforeAll(async () => {
  redis = await startRedisCluster({ masters: 3, replicas: 1 });
  cluster = await startCluster({
    nodes: 2,
    env: { REDIS_URL: redis.url, REDIS_ADAPTER: 'sharded', REDIS_SUBSCRIPTION_MODE: 'dynamic', SYNC_SPREAD_MS: '200' },
  });
}, 90_000);

afterAll(async () => {
  await cluster?.close();
  await redis?.stop();
});

const channelOf = (userId: string) => `${testRedisPrefix()}#/chat#${userRoom(userId)}#`;

/** Subscribers of a user's channel on the master serving its slot now. */
async function subscribersOnMaster(userId: string): Promise<{ master: number; count: number }> {
  const master = await redis.masterOf(await redis.slotOf(channelOf(userId)));
  const [, count] = (await redis.call(master, 'PUBSUB', 'SHARDNUMSUB', channelOf(userId))) as [string, number];
  return { master, count: Number(count) };
}

describe('a Redis Cluster URL', () => {
  it('needs the sharded adapter, and host:port pairs', () => {
    expect(() => loadConfig(clusterEnv({ REDIS_URL: redis.url, REDIS_ADAPTER: 'classic' }))).toThrow(/REDIS_ADAPTER=sharded/);
    expect(() => loadConfig(clusterEnv({ REDIS_URL: 'redis+cluster://', REDIS_ADAPTER: 'sharded' }))).toThrow(/REDIS_URL/);
    expect(loadConfig(clusterEnv({ REDIS_URL: redis.url, REDIS_ADAPTER: 'sharded' })).redisUrl).toBe(redis.url);
  });
});

describe('two gateway nodes on a Redis Cluster of three masters', () => {
  it("subscribe each user's channel on its slot's master, and converge through the failover of a master", async () => {
    const ledger = new Ledger();
    // Each user with a tab on each node.
    const users = await setUpUsers(cluster, ledger, { users: 8, tabsPerUser: 2, label: 'rc' });
    const placed = await Promise.all(users.map((u) => subscribersOnMaster(u.id)));
    for (const p of placed) expect(p.count).toBe(2);
    // The users' channels are spread over the masters, not on one shard.
    expect(new Set(placed.map((p) => p.master)).size).toBeGreaterThan(1);

    // The master holding the most of these users' channels is killed while every tab keeps sending.
    const tally = new Map<number, number>();
    for (const p of placed) tally.set(p.master, (tally.get(p.master) ?? 0) + 1);
    const victim = [...tally].sort((a, b) => b[1] - a[1])[0]![0];
    const onVictim = users.filter((_, i) => placed[i]!.master === victim);

    const sends: Promise<SendRecord>[] = [];
    const round = (label: string) => {
      for (const u of users)
        for (const t of u.tabs) sends.push(ledger.send(t, { conversationId: u.conversations[0], content: `${label} from ${t.name}` }));
    };
    round('before');
    await Promise.all(sends);
    await redis.kill(victim);
    // Traffic through the failover: the replica takes over once the others have timed the master out.
    for (let i = 0; i < 6; i++) {
      round(`during ${i}`);
      await sleep(300);
    }
    const { master: promoted } = await untilOk(async () => {
      const now = await subscribersOnMaster(onVictim[0]!.id);
      return now.master !== victim && now.count === 2 ? now : undefined;
    }, "the victim's slots to be served, and subscribed, on its replica");
    expect(promoted).not.toBe(victim);
    round('after');
    await Promise.all(sends);

    try {
      const convergence = await awaitConvergence(cluster.db, users, ledger, performance.now());
      expect(convergence.problems).toEqual([]);
      const integrity = await checkIntegrity(cluster.db, users, ledger);
      expect(integrity.problems).toEqual([]);
      // Every send was acknowledged in the end (retried where the failover refused it).
      expect(integrity.counts.acked).toBe(integrity.counts.sends);
      // And every user's channel is held again by both nodes, on whichever master serves it now.
      for (const u of users) expect((await subscribersOnMaster(u.id)).count).toBe(2);
      const resubscribed = await Promise.all(cluster.nodes.map((n) => n.gateway.metrics.redisResubscriptions.get()));
      expect(resubscribed.some((m) => (m.values[0]?.value ?? 0) > 0)).toBe(true);
    } finally {
      closeTabs(users);
    }
  }, 120_000);
});
