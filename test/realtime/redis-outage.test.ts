// One node loses Redis (through a TCP proxy that is cut; the real Redis stays up for everyone else): sends
// on it are still stored and acknowledged, its own tabs still get their events, readiness says 503; when Redis
// returns, cross-node delivery resumes by itself and tabs repair what they missed with history:get { after }.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { MessageDto } from '../../src/shared/events.ts';
import { eventually, REDIS_URL, startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { closeAllTabs, connectTab } from '../helpers/sockets.ts';

let cluster: Cluster;
let proxy: TcpProxy;
/** Reaches Redis through the proxy. */
let A: ClusterNode;
/** Reaches Redis directly. */
let B: ClusterNode;

beforeAll(async () => {
  const redis = new URL(REDIS_URL);
  proxy = await startTcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
  cluster = await startCluster({ nodes: 1, env: { ASSISTANT: 'none' } });
  B = cluster.nodes[0]!;
  A = await cluster.addNode({ REDIS_URL: proxy.wrap(REDIS_URL) });
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
  await proxy?.close();
});

const readyz = async (url: string) => {
  const res = await fetch(`${url}/readyz`);
  const body = (await res.json()) as { status: string; checks: Record<string, string> };
  return { httpStatus: res.status, ...body };
};

it('local delivery goes on during the outage, cross-node delivery resumes after it, and tabs catch up by seq', async () => {
  const user = cluster.user('outage');
  const token = cluster.tokenFor(user);
  const a1 = await connectTab(A.url, token, { name: 'a1' });
  const a2 = await connectTab(A.url, token, { name: 'a2' });
  const b1 = await connectTab(B.url, token, { name: 'b1' });
  const { conversation } = await b1.ok('conversation:create', { title: 'outage' });
  await a1.waitFor('conversation:created', (p: { conversation: { id: string } }) => p.conversation.id === conversation.id);
  const created = (tab: typeof a1, id: string) => tab.waitFor<{ message: MessageDto }>('message:created', (p) => p.message.id === id);

  proxy.cut();
  // A still serves its own sockets: it stays ready (a balancer that took every node out would serve no one), and
  // says that its fan-out is degraded.
  await eventually(async () => ((await readyz(A.url)).checks.redis === 'degraded' ? true : undefined), 'A to report degraded fan-out');
  expect(await readyz(A.url)).toEqual({ httpStatus: 200, status: 'ready', checks: { database: 'ok', redis: 'degraded' } });
  expect((await readyz(B.url)).checks.redis).toBe('ok');

  // On A: stored, acknowledged (the rate limit falls back to memory), and delivered to A's own tabs.
  const duringA = await a1.ok('message:send', {
    conversationId: conversation.id,
    content: 'sent on A during the outage',
    clientMessageId: 'out-a',
  });
  for (const tab of [a1, a2]) await created(tab, duringA.message.id);
  // On B: the same for B's tabs.
  const duringB = await b1.ok('message:send', {
    conversationId: conversation.id,
    content: 'sent on B during the outage',
    clientMessageId: 'out-b',
  });
  await created(b1, duringB.message.id);

  proxy.restore();
  await eventually(async () => ((await readyz(A.url)).checks.redis === 'ok' ? true : undefined), 'A to report its fan-out restored');

  // Cross-node delivery resumes by itself, both ways (probes until one gets through: reconnects are not instant).
  let probe = 0;
  const through = async (from: typeof a1, to: typeof a1) =>
    eventually(
      async () => {
        const { message } = await from.ok('message:send', {
          conversationId: conversation.id,
          content: `probe ${probe}`,
          clientMessageId: `probe-${probe++}`,
        });
        return to.waitFor('message:created', (p: { message: MessageDto }) => p.message.id === message.id, 500).catch(() => undefined);
      },
      `delivery ${from.name} → ${to.name}`,
      20_000,
      0,
    );
  await through(a1, b1);
  await through(b1, a1);

  // The outage was real: what crossed nodes during it was lost (the pub/sub adapter is at-most-once) ...
  expect(b1.all('message:created', (p: { message: MessageDto }) => p.message.id === duringA.message.id)).toEqual([]);
  expect(a1.all('message:created', (p: { message: MessageDto }) => p.message.id === duringB.message.id)).toEqual([]);
  // ... and every tab repairs what it missed from the seqs it saw: history:get { after } from the last gap-free seq.
  const lastSeq = Number(
    (await cluster.db.query<{ last_seq: string }>('select last_seq from conversations where id = $1', [conversation.id]))[0]!.last_seq,
  );
  for (const tab of [a1, a2, b1]) {
    const seen = new Set(
      tab.all<{ message: MessageDto }>('message:created', (p) => p.message.conversationId === conversation.id).map((p) => p.message.seq),
    );
    let contiguous = 0;
    while (seen.has(contiguous + 1)) contiguous++;
    const page = await tab.ok('history:get', { conversationId: conversation.id, after: contiguous, limit: 200 });
    for (const m of page.messages) seen.add(m.seq);
    expect([...seen].sort((x, y) => x - y)).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
  }
  expect(a1.connected && a2.connected && b1.connected).toBe(true);
});
