// Redis unreachable for every node, 10 s and 30 s: each node keeps serving its own tabs and stays ready (its
// readiness says fan-out is degraded), a stop reaches the reply through the database, and once Redis is back every
// tab converges on what PostgreSQL holds, replies' ends and a conversation started during the outage included.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFaultCluster, type FaultCluster } from '../helpers/fault-cluster.ts';
import { redisUnreachable, type DrillResult } from '../helpers/fault-drills.ts';
import { expectConvergedAndIntact } from '../helpers/fault-expect.ts';

let cluster: FaultCluster;
beforeAll(async () => {
  cluster = await startFaultCluster({ nodes: 3 });
});
afterAll(async () => {
  await cluster?.close();
});

function expectServedThroughout(result: DrillResult, outageMs: number) {
  expectConvergedAndIntact(result);
  const observed = result.observed as {
    maxAckMsDuring: number;
    stop: string;
    stopped: { status: string };
    readiness: Record<string, string[]>;
  };
  // Sends are stored and acknowledged as usual: Redis is not on their path. A send that waited for Redis would wait
  // for the outage to end; the bound is half of it, so that a machine busy with other work cannot fail it.
  expect(observed.maxAckMsDuring).toBeLessThan(outageMs / 2);
  // A stop for a reply running on another node is answered (no node can be asked), and the reply stops.
  expect(observed.stop).toMatch(/^stopped in /);
  expect(observed.stopped.status).toBe('stopped');
  for (const [node, seen] of Object.entries(observed.readiness)) {
    expect(seen, node).toContain('200 ok/degraded');
    for (const answer of seen) expect(answer, node).toMatch(/^200 /);
  }
}

it('Redis unreachable for 10 s', async () => {
  expectServedThroughout(await redisUnreachable(cluster, 10_000), 10_000);
}, 90_000);

it('Redis unreachable for 30 s', async () => {
  expectServedThroughout(await redisUnreachable(cluster, 30_000), 30_000);
}, 120_000);
