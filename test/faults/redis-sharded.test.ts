// The quick Redis faults of redis-cut.test.ts again, with the sharded adapter subscribing per user
// (REDIS_ADAPTER=sharded, REDIS_SUBSCRIPTION_MODE=dynamic): a node's subscriber holds a channel per user it has a
// tab of, sends no SSUBSCRIBE while Redis is away and subscribes them all again once it is back, then tells its
// tabs to catch up; a hung Redis holds neither sends nor new tabs.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually } from '../helpers/cluster.ts';
import { FAULT_BOUNDS, startFaultCluster, type FaultCluster } from '../helpers/fault-cluster.ts';
import { redisHung, redisSubscriberCut } from '../helpers/fault-drills.ts';
import { expectConvergedAndIntact, expectServedThroughRedisHang } from '../helpers/fault-expect.ts';

let cluster: FaultCluster;
beforeAll(async () => {
  cluster = await startFaultCluster({ nodes: 3, env: { REDIS_ADAPTER: 'sharded', REDIS_SUBSCRIPTION_MODE: 'dynamic' } });
});
afterAll(async () => {
  await cluster?.close();
});

it("one node's Redis cut for 3 s while replies end: it subscribes its users' channels again and every tab converges", async () => {
  const since = Date.now();
  const result = await redisSubscriberCut(cluster, 3000);
  expectConvergedAndIntact(result);
  await eventually(
    () =>
      cluster.warnings(since).some((line) => /-1: redis subscriber back: this node's tabs told to catch up/.test(line)) ? true : undefined,
    "the cut node's subscriber to come back",
  );
  // What it subscribed again: its own channels and those of the users it holds tabs of.
  const again = cluster.nodes[1]!.logs().find((l) => l.msg === 'redis channels subscribed again' && Number(l.time) >= since);
  expect(Number(again?.channels)).toBeGreaterThan(2);
});

it('Redis hung for 4 s: sends do not wait for it, readiness stays 200, and what it held back leaves no tab behind', async () => {
  expectServedThroughRedisHang(await redisHung(cluster, 4000), FAULT_BOUNDS);
});
