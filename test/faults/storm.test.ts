// A reconnect storm: 150 tabs on one node (30 users × 5), the node SIGKILLed and started again while every user
// writes from a tab on the other node. All 150 reconnect at once, catch up, and agree with PostgreSQL.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFaultCluster, type FaultCluster } from '../helpers/fault-cluster.ts';
import { reconnectStorm } from '../helpers/fault-drills.ts';
import { expectConvergedAndIntact } from '../helpers/fault-expect.ts';

let cluster: FaultCluster;
beforeAll(async () => {
  cluster = await startFaultCluster({ nodes: 2 });
});
afterAll(async () => {
  await cluster?.close();
});

it('150 tabs of a killed node reconnect to it when it is back, catch up on what was written meanwhile, and converge', async () => {
  const result = await reconnectStorm(cluster, { users: 30, tabsPerUser: 5 });
  expectConvergedAndIntact(result);
  expect(result.observed.stormTabs).toBeGreaterThanOrEqual(150);
  expect(result.convergence.tabs.length).toBe(180);
});
