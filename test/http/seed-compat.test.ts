// What the "todo AI chatbot" apps ask of the store beyond the core contract: get-or-create of the user's
// conversation (REST and socket, concurrent tabs ending with one conversation), and their history route in their
// own shape.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, createConversation, expectError, postMessage } from '../helpers/api.ts';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectTab } from '../helpers/sockets.ts';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 2, env: { ASSISTANT: 'none' } });
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

describe('get-or-create (reuse: "latest")', () => {
  it('over REST: 201 with a new conversation when the user has none, then 200 with the most recently updated one', async () => {
    const user = cluster.user('goc-rest');
    const client = api(cluster.nodes[0]!.url, cluster.tokenFor(user));
    const first = await client.post('/api/conversations', { reuse: 'latest', title: 'mine' });
    expect(first.status).toBe(201);
    const older = await createConversation(client, 'older');
    await postMessage(client, first.body.conversation.id, 'makes it the latest', 'goc-1');
    const again = await client.post('/api/conversations', { reuse: 'latest' });
    expect(again.status).toBe(200);
    expect(again.body.conversation.id).toBe(first.body.conversation.id);
    expect(again.body.conversation.id).not.toBe(older.id);
    expectError(await client.post('/api/conversations', { reuse: 'oldest' }), 400, 'VALIDATION');
  });

  it('over the socket: created true, then false; and tabs asking at once on two nodes end with one conversation', async () => {
    const user = cluster.user('goc-socket');
    const token = cluster.tokenFor(user);
    const tabs = await Promise.all([0, 1, 0, 1].map((n) => connectTab(cluster.nodes[n]!.url, token)));
    const acks = await Promise.all(tabs.map((t) => t.ok('conversation:create', { reuse: 'latest' })));
    expect(new Set(acks.map((a) => a.conversation.id)).size).toBe(1);
    expect(acks.filter((a) => a.created)).toHaveLength(1);
    expect(await cluster.db.query('select id from conversations where user_id = $1', [user])).toHaveLength(1);
    const plain = await tabs[0]!.ok('conversation:create', { title: 'a second one' });
    expect(plain.created).toBe(true);
    // Only creations are announced: the one of the four, then the plain one (which also serves as a barrier: a
    // reuse announced by mistake would have come before it).
    const announced = await tabs[0]!.waitForCount<{ conversation: { id: string } }>('conversation:created', 2);
    expect(announced.map((p) => p.conversation.id).sort()).toEqual([acks[0]!.conversation.id, plain.conversation.id].sort());
    expect(tabs[0]!.all('conversation:created')).toHaveLength(2);
  });
});

describe('GET /api/:userId/conversations/:conversationId/messages', () => {
  it('answers a bare array of { id, role, content, created_at }, ascending, with limit and before', async () => {
    const user = cluster.user('seed');
    const client = api(cluster.nodes[1]!.url, cluster.tokenFor(user));
    const c = await createConversation(client, 'seed');
    for (let i = 1; i <= 5; i++) await postMessage(client, c.id, `m${i}`, `seed-${i}`);
    const all = await client.get(`/api/${encodeURIComponent(user)}/conversations/${c.id}/messages`);
    expect(all.status).toBe(200);
    expect(Array.isArray(all.body)).toBe(true);
    expect(all.body.map((m: { content: string }) => m.content)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    expect(Object.keys(all.body[0]).sort()).toEqual(['content', 'created_at', 'id', 'role']);
    expect(all.body[0].role).toBe('user');
    const page = await client.get(`/api/${encodeURIComponent(user)}/conversations/${c.id}/messages?limit=2&before=4`);
    expect(page.body.map((m: { content: string }) => m.content)).toEqual(['m2', 'm3']);
  });

  it('is 403 for another user id in the path, and 404 for a conversation that is missing or not theirs', async () => {
    const owner = cluster.user('seed-owner');
    const other = cluster.user('seed-other');
    const c = await createConversation(api(cluster.nodes[0]!.url, cluster.tokenFor(owner)), 'private');
    const intruder = api(cluster.nodes[0]!.url, cluster.tokenFor(other));
    expectError(await intruder.get(`/api/${encodeURIComponent(owner)}/conversations/${c.id}/messages`), 403, 'FORBIDDEN');
    expectError(await intruder.get(`/api/${encodeURIComponent(other)}/conversations/${c.id}/messages`), 404, 'NOT_FOUND');
    expectError(
      await intruder.get(`/api/${encodeURIComponent(other)}/conversations/00000000-0000-7000-8000-000000000000/messages`),
      404,
      'NOT_FOUND',
    );
  });
});
