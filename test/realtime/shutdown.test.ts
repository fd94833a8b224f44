// A node's graceful shutdown (SIGTERM, a rolling deploy) ends the sockets of that node only: the tabs on the
// other nodes stay connected and keep receiving their user's events, and the closing node lets the reply it
// runs finish (within SHUTDOWN_TIMEOUT_MS) before it goes.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectTab } from '../helpers/sockets.ts';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 2, env: { ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '20', SHUTDOWN_TIMEOUT_MS: '10000' } });
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

it("closing one node disconnects that node's tabs only; the others keep their session and their events", async () => {
  const staying = await cluster.addNode();
  const leaving = await cluster.addNode();
  const user = cluster.user('deploy');
  const token = cluster.tokenFor(user);
  const onLeaving = await connectTab(leaving.url, token, { name: 'on-leaving' });
  const onStaying = await connectTab(staying.url, token, { name: 'on-staying' });
  // A bystander on the first node, another user entirely.
  const bystander = await connectTab(cluster.nodes[0]!.url, cluster.tokenFor(cluster.user('bystander')), { name: 'bystander' });

  // A reply in flight on the leaving node: shutdown lets it finish, and the staying tab sees its end.
  const content = Array.from({ length: 30 }, (_, i) => `w${i}`).join(' ');
  const { message } = await onLeaving.ok('message:send', { content, clientMessageId: 'deploy-1' });
  const reply = await onStaying.replyStart(message.id);
  await onStaying.waitFor('message:delta', (d: { messageId: string }) => d.messageId === reply.id);

  await leaving.close();
  expect(await onLeaving.disconnected()).toMatch(/io server disconnect|transport close/);
  // (Fails at once, with the reason, if the staying tab is disconnected instead.)
  const end = await Promise.race([
    onStaying.replyEnd(reply.id),
    onStaying.disconnected().then((reason) => {
      throw new Error(`a tab on the staying node was disconnected (${reason}) when another node shut down`);
    }),
  ]);
  expect(end).toMatchObject({ status: 'complete', content: `Echo: ${content}` });

  // Still connected, on both other nodes, and still served: a write through the staying tab reaches it.
  const { conversation } = await onStaying.ok('conversation:create', { title: 'after the deploy' });
  await onStaying.waitFor('conversation:created', (p: { conversation: { id: string } }) => p.conversation.id === conversation.id);
  expect(onStaying.all('disconnect')).toEqual([]);
  expect(onStaying.connected).toBe(true);
  expect(bystander.all('disconnect')).toEqual([]);
  expect(bystander.connected).toBe(true);
  expect((await bystander.request('conversation:list', {})).ok).toBe(true);
});
