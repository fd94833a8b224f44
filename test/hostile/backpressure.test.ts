// A client that stops reading must not make the node hold everything its user's other tabs cause. One user opens a
// connection that never reads (a raw WebSocket whose TCP socket is paused; a long-polling session that never polls
// again) beside a well-behaved tab, and makes the server send a lot: long messages answered by a fast echo, and
// renames. The node's buffers for its clients are summed from Engine.IO's and ws's own state all along; the stalled
// connection must be cut with the metric counted, the buffers must stay near MAX_BUFFERED_BYTES whatever the
// traffic, and another user's commands must be answered meanwhile.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CONGESTED_ROOM } from '../../src/realtime/backpressure.ts';
import { userRoom } from '../../src/shared/events.ts';
import { eventually, startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.ts';
import { closeAllTabs, connectTab, joinDeltas, type Tab } from '../helpers/sockets.ts';
import { stalledPolling, stalledWebSocket, type StalledClient } from './stalled-clients.ts';

/** Small, so that the test is quick; the default is 1 MiB. */
const MAX_BUFFERED_BYTES = 256 * 1024;
/**
 * What the flood sends to each of the user's connections: many times the bound, and more than the kernel's socket
 * buffers on loopback take before a paused WebSocket's data stays in the node (about 4 MB here).
 */
const TRAFFIC = 32 * MAX_BUFFERED_BYTES;

let cluster: Cluster;
let node: ClusterNode;

beforeAll(async () => {
  cluster = await startCluster({
    nodes: 1,
    env: {
      ASSISTANT: 'echo',
      ASSISTANT_DELAY_MS: '0',
      MAX_BUFFERED_BYTES: String(MAX_BUFFERED_BYTES),
      // The flood must meet only the bound under test, never a rate limit.
      SEND_RATE_LIMIT: '1000000',
      SEND_RATE_WINDOW_S: '1',
      // A flood of commands in flight at once from one socket, which the in-flight cap would otherwise refuse.
      MAX_INFLIGHT_PER_SOCKET: '100000',
    },
  });
  node = cluster.nodes[0]!;
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

/** What the node holds for its clients right now: Engine.IO's write buffers and, on WebSockets, ws's send buffer. */
function bufferedOnNode(): number {
  const engine = node.gateway.sockets.io.engine as unknown as { clients: Record<string, EngineClient> };
  let bytes = 0;
  for (const client of Object.values(engine.clients)) {
    for (const packet of client.writeBuffer) bytes += typeof packet.data === 'string' ? packet.data.length : (packet.data?.length ?? 0);
    if (client.transport.name === 'websocket') bytes += client.transport.socket?.bufferedAmount ?? 0;
  }
  return bytes;
}

/** Engine.IO's and ws's fields, which are not in their typings. */
interface EngineClient {
  writeBuffer: { data?: string | Buffer }[];
  transport: { name: string; socket?: { bufferedAmount: number } };
}

async function slowConsumers(action: string): Promise<number> {
  const metric = await node.gateway.metrics.registry.getSingleMetric('chat_slow_consumers_total')?.get();
  return metric?.values.find((v) => v.labels.action === action)?.value ?? 0;
}

const socketsOf = (user: string) => node.gateway.sockets.nsp.adapter.rooms.get(userRoom(user))?.size ?? 0;

/** A long message of words, so that the echo streams it as many deltas. */
const longText = (tag: string) =>
  Array.from({ length: 1200 }, (_, i) => `${tag}${i}`)
    .join(' ')
    .slice(0, 9000);

/** The size of everything a tab has received, as JSON: what each of its user's connections is sent. */
const receivedBytes = (tab: Tab) => tab.events.reduce((sum, e) => sum + (JSON.stringify(e.payload)?.length ?? 0), 0);

/**
 * Floods `driver`'s user with sends of long messages and renames until TRAFFIC has reached the driver, while
 * `other` (another user) keeps sending commands; returns the other user's ack times, one per round.
 */
async function flood(driver: Tab, other: Tab): Promise<number[]> {
  const { conversation } = await driver.ok('conversation:create', { title: 'flood' });
  const { conversation: otherConversation } = await other.ok('conversation:create', { title: 'calm' });
  let round = 0;
  const otherAcks: number[] = [];
  while (receivedBytes(driver) < TRAFFIC) {
    round++;
    const sends = Array.from({ length: 8 }, (_, i) =>
      driver.ok('message:send', { conversationId: conversation.id, content: longText(`r${round}w`), clientMessageId: `f-${round}-${i}` }),
    );
    const renames = Array.from({ length: 40 }, (_, i) =>
      driver.ok('conversation:rename', { conversationId: conversation.id, title: `${'t'.repeat(180)} ${round}-${i}` }),
    );
    const start = performance.now();
    const answered = Promise.all([
      other.ok('conversation:list', {}),
      other.ok('history:get', { conversationId: otherConversation.id, limit: 50 }),
      other.ok('message:send', { conversationId: otherConversation.id, content: `calm ${round}`, clientMessageId: `calm-${round}` }),
    ]).then(() => otherAcks.push(performance.now() - start));
    await Promise.all([...sends, ...renames, answered]);
  }
  return otherAcks;
}

describe.each([
  ['websocket', stalledWebSocket],
  ['polling', stalledPolling],
] as const)('a %s connection that stops reading', (transport, open) => {
  let stalled: StalledClient | undefined;
  afterEach(() => stalled?.destroy());

  it('is cut once its buffer stays over MAX_BUFFERED_BYTES; the node holds a bounded amount meanwhile; others are served', async () => {
    const user = cluster.user(`slow-${transport}`);
    const token = cluster.tokenFor(user);
    const driver = await connectTab(node.url, token, { name: 'driver' });
    stalled = await open(node.url, token);
    await eventually(() => (socketsOf(user) === 2 ? true : undefined), 'the stalled client to join its room');
    const other = await connectTab(node.url, cluster.tokenFor(cluster.user('calm')), { name: 'other' });
    const disconnectedBefore = await slowConsumers('disconnected');
    const skippedBefore = await slowConsumers('skipped_deltas');

    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, bufferedOnNode());
    }, 10);
    let otherAcks: number[];
    let cut: boolean;
    try {
      otherAcks = await flood(driver, other);
      // Past the bound for the grace period (5 s) at most, plus a sweep.
      cut = await eventually(() => (socketsOf(user) === 1 ? true : undefined), 'the stalled connection to be cut', 15_000).catch(
        () => false,
      );
    } finally {
      clearInterval(sampler);
    }
    const sent = receivedBytes(driver);
    const heldAtEnd = bufferedOnNode();
    console.info(
      `[backpressure] ${transport}: peak ${(peak / 1024).toFixed(0)} KiB buffered on the node (${(heldAtEnd / 1024).toFixed(0)} KiB at the end) ` +
        `for ${(sent / 1024).toFixed(0)} KiB sent to each connection of the user; the other user's rounds answered in ` +
        `${Math.max(...otherAcks).toFixed(0)} ms at most (median ${otherAcks.sort((a, b) => a - b)[otherAcks.length >> 1]!.toFixed(0)} ms)`,
    );

    expect(cut, 'the stalled connection was cut').toBe(true);
    expect(await stalled.closed()).toBe(true);
    expect(await slowConsumers('disconnected')).toBe(disconnectedBefore + 1);
    // Deltas stopped going to it once its buffer passed half the bound, before it was cut.
    expect(await slowConsumers('skipped_deltas')).toBeGreaterThan(skippedBefore);
    // Bounded by twice the bound (the quick cut) and what the flood adds in the two sweeps that rule waits for,
    // whatever was sent (here a quarter of a second brings up to about 400 KiB).
    expect(peak, `peak ${peak} B buffered while ${sent} B were sent to each connection`).toBeLessThan(6 * MAX_BUFFERED_BYTES);
    expect(sent).toBeGreaterThan(5 * peak);
    // And once it is cut, nothing is held for it.
    expect(heldAtEnd).toBeLessThan(MAX_BUFFERED_BYTES / 2);

    // The well-behaved tab of the same user was never cut, and another user was answered every round.
    expect(driver.connected).toBe(true);
    expect((await driver.request('conversation:list', {})).ok).toBe(true);
    expect(otherAcks.length).toBeGreaterThan(0);
    expect(other.connected).toBe(true);
  });
});

it('deltas skip the tabs in the congested room, on every node; they get the whole reply from message:updated', async () => {
  const second = cluster.nodes[1] ?? (await cluster.addNode());
  const user = cluster.user('congested');
  const token = cluster.tokenFor(user);
  const sender = await connectTab(node.url, token, { name: 'sender' });
  const sameNode = await connectTab(node.url, token, { name: 'same-node' });
  const otherNode = await connectTab(second.url, token, { name: 'other-node' });
  // As the sweep does for a connection past half the bound (these tabs' buffers stay empty, so it leaves them there).
  for (const [gatewayNode, tab] of [
    [node, sameNode],
    [second, otherNode],
  ] as const) {
    gatewayNode.gateway.sockets.nsp.sockets.get(tab.socket.id!)!.join(CONGESTED_ROOM);
  }

  const content = longText('d').slice(0, 2000);
  const { message } = await sender.ok('message:send', { content, clientMessageId: 'congested-1' });
  const reply = await sender.replyStart(message.id);
  const ended = await Promise.all([sender, sameNode, otherNode].map((tab) => tab.replyEnd(reply.id)));
  expect(ended.map((m) => m.content)).toEqual([`Echo: ${content}`, `Echo: ${content}`, `Echo: ${content}`]);
  expect(joinDeltas(sender.deltas(reply.id))).toBe(`Echo: ${content}`);
  expect(sameNode.deltas(reply.id)).toEqual([]);
  expect(otherNode.deltas(reply.id)).toEqual([]);
  // Everything else still reaches them.
  expect(sameNode.all('message:created').length).toBe(2);
  expect(otherNode.all('message:created').length).toBe(2);
});
