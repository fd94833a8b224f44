// SIGTERM when something hangs: the messages table locked by another connection (a send waits on it, a reply's
// saves too), and a client that stopped reading its socket (its WebSocket close can never complete). The node exits
// 0 within SHUTDOWN_TIMEOUT_MS (plus the moment a process takes to end); once it is back, every tab converges and
// nothing acknowledged is lost.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FAULT_BOUNDS, startFaultCluster, type ExitInfo, type FaultCluster } from '../helpers/fault-cluster.ts';
import { sigtermLockedTable, sigtermStalledClient } from '../helpers/fault-drills.ts';
import { expectConvergedAndIntact } from '../helpers/fault-expect.ts';

/** What a process needs beyond the shutdown's own bound to flush its log and end. */
const EXIT_MARGIN_MS = 1000;

let cluster: FaultCluster;
beforeAll(async () => {
  cluster = await startFaultCluster({ nodes: 3 });
});
afterAll(async () => {
  await cluster?.close();
});

function expectBoundedExit(exit: ExitInfo) {
  expect(exit).toMatchObject({ code: 0, signal: null });
  expect(exit.ms).toBeLessThanOrEqual(FAULT_BOUNDS.SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS);
}

it('with the messages table locked: exits 0 within the bound; its reply ends failed INTERRUPTED with its saved text', async () => {
  const result = await sigtermLockedTable(cluster);
  expectConvergedAndIntact(result);
  expectBoundedExit(result.observed.exit as ExitInfo);
  expect(result.observed.reply).toMatchObject({ status: 'failed', error: 'INTERRUPTED' });
});

it('with a client that stopped reading: exits 0 within the bound; the client catches up once its network is back', async () => {
  const result = await sigtermStalledClient(cluster);
  expectConvergedAndIntact(result);
  expectBoundedExit(result.observed.exit as ExitInfo);
});
