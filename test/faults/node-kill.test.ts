// Gateway nodes killed for real (SIGKILL of a child process), then started again on the same address as an
// orchestrator would: mid-reply, and at the moment a node acknowledges a send. Every tab on every node converges
// on what PostgreSQL holds, without new traffic in the conversation; nothing acknowledged is lost or duplicated; every
// acknowledged message keeps exactly one reply, and it ends.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFaultCluster, type FaultCluster } from '../helpers/fault-cluster.ts';
import { nodeKillAfterAck, nodeKillMidReply } from '../helpers/fault-drills.ts';
import { expectConvergedAndIntact } from '../helpers/fault-expect.ts';

let cluster: FaultCluster;
beforeAll(async () => {
  cluster = await startFaultCluster({ nodes: 3 });
});
afterAll(async () => {
  await cluster?.close();
});

it('SIGKILL mid-reply: a surviving node ends the reply failed INTERRUPTED with the text it had saved, and every tab shows that', async () => {
  const result = await nodeKillMidReply(cluster);
  expectConvergedAndIntact(result);
  const { reply, savedChars } = result.observed as { reply: { status: string; error: string; chars: number }; savedChars: number };
  expect(reply).toMatchObject({ status: 'failed', error: 'INTERRUPTED' });
  // The text saved before the kill is kept (never an empty failed reply over text the tabs were shown).
  expect(reply.chars).toBeGreaterThanOrEqual(savedChars);
});

it('SIGKILL right after an acknowledgement: the acknowledged message keeps one reply that ends, and retried sends are stored once', async () => {
  const result = await nodeKillAfterAck(cluster);
  expectConvergedAndIntact(result);
  const { firstAcked } = result.observed as { firstAcked: { status: string; error?: string; wholeText: boolean } };
  // Whether the node had time to run it or not, the reply ended: whole, or failed INTERRUPTED.
  if (firstAcked.status === 'complete') expect(firstAcked.wholeText).toBe(true);
  else expect(firstAcked).toMatchObject({ status: 'failed', error: 'INTERRUPTED' });
});
