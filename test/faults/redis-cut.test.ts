// Redis faults that end quickly: one node's Redis connections cut (its subscriber and publisher reconnect by
// themselves), and Redis hung for every node (connections open, no answers). Cross-node events lost meanwhile,
// replies' ends included, are repaired without new traffic: the nodes tell their tabs to catch up.
import { afterAll, beforeAll, it } from 'vitest';
import { eventually } from '../helpers/cluster.ts';
import { FAULT_BOUNDS, startFaultCluster, type FaultCluster } from '../helpers/fault-cluster.ts';
import { redisHung, redisSubscriberCut } from '../helpers/fault-drills.ts';
import { expectConvergedAndIntact, expectServedThroughRedisHang } from '../helpers/fault-expect.ts';

let cluster: FaultCluster;
beforeAll(async () => {
  cluster = await startFaultCluster({ nodes: 3 });
});
afterAll(async () => {
  await cluster?.close();
});

it("one node's Redis cut for 3 s while replies end: its tabs and the others' converge once it reconnects", async () => {
  const since = Date.now();
  const result = await redisSubscriberCut(cluster, 3000);
  expectConvergedAndIntact(result);
  // The cut node's subscriber missed the others' events: once it is back (its reconnects back off, so possibly after
  // the tabs converged by other means), it tells its own tabs to catch up.
  await eventually(
    () =>
      cluster.warnings(since).some((line) => /-1: redis subscriber back: this node's tabs told to catch up/.test(line)) ? true : undefined,
    "the cut node's subscriber to come back",
  );
});

it('Redis hung for 4 s: sends do not wait for it, readiness stays 200, and what it held back leaves no tab behind', async () => {
  const hangMs = 4000;
  expectServedThroughRedisHang(await redisHung(cluster, hangMs), FAULT_BOUNDS);
});
