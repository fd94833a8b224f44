// Final erasure: after DELETE /api/me, every token of the user issued before it is refused, on every node and
// both doors; nothing in flight can bring the user or their data back; a token issued afterwards starts a new,
// empty user.
import jwt from 'jsonwebtoken';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, createConversation, expectError, postMessage } from '../helpers/api.ts';
import { CLUSTER_SECRET, startCluster, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectError, connectTab } from '../helpers/sockets.ts';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 2, env: { ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '0' } });
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

/** A token issued at `iatS` (seconds since the epoch), valid for an hour. */
const tokenIssuedAt = (sub: string, iatS: number) => jwt.sign({ sub, iat: iatS, exp: iatS + 3600 }, CLUSTER_SECRET, { algorithm: 'HS256' });

/** What the database holds of a user: `erased` is the tombstone the user's row becomes. */
const rowsOf = async (user: string) => {
  const [row] = await cluster.db.query<{ erased_at: Date | null }>('select erased_at from users where id = $1', [user]);
  return {
    erased: row ? row.erased_at !== null : 'no row',
    conversations: (await cluster.db.query('select id from conversations where user_id = $1', [user])).length,
    messages: (await cluster.db.query('select id from messages where user_id = $1', [user])).length,
  };
};

async function erasedAt(user: string): Promise<number> {
  const [row] = await cluster.db.query<{ erased_at: Date }>('select erased_at from users where id = $1', [user]);
  return row!.erased_at.getTime();
}

describe('DELETE /api/me', () => {
  it('refuses every older token afterwards, on both nodes and both doors, and closes the open sockets', async () => {
    const user = cluster.user('erased');
    const token = cluster.tokenFor(user);
    const [a, b] = cluster.nodes;
    const c = await createConversation(api(a!.url, token), 'to be erased');
    await postMessage(api(a!.url, token), c.id, 'soon gone', 'erase-1');
    const tabs = [await connectTab(a!.url, token), await connectTab(b!.url, token)];

    expect((await api(b!.url, token).delete('/api/me')).status).toBe(204);
    for (const tab of tabs) await tab.waitFor('disconnect');
    expect(await rowsOf(user)).toEqual({ erased: true, conversations: 0, messages: 0 });

    for (const node of [a!, b!]) {
      const refused = await api(node.url, token).get('/api/conversations');
      expectError(refused, 401, 'UNAUTHORIZED');
      expect(refused.body.error.message).toMatch(/erased/);
      expectError(await api(node.url, token).post('/api/conversations', { title: 'back?' }), 401, 'UNAUTHORIZED');
      const handshake = await connectError(node.url, token);
      expect(handshake.data?.code).toBe('UNAUTHORIZED');
      expect(handshake.message).toMatch(/erased/);
    }
    expect(await rowsOf(user)).toEqual({ erased: true, conversations: 0, messages: 0 });
  });

  it('lets a token issued afterwards start a new, empty user', async () => {
    const user = cluster.user('reborn');
    const old = cluster.tokenFor(user);
    await createConversation(api(cluster.nodes[0]!.url, old), 'first life');
    expect((await api(cluster.nodes[0]!.url, old).delete('/api/me')).status).toBe(204);
    const fresh = tokenIssuedAt(user, Math.ceil((await erasedAt(user)) / 1000) + 1);
    const client = api(cluster.nodes[1]!.url, fresh);
    expect((await client.get('/api/conversations')).body.conversations).toEqual([]);
    const tab = await connectTab(cluster.nodes[1]!.url, fresh);
    const sent = await tab.ok('message:send', { content: 'a new start', clientMessageId: 'reborn-1' });
    expect(sent.message.seq).toBe(1);
    expect(await rowsOf(user)).toMatchObject({ erased: true, conversations: 1 });
  });

  it('leaves nothing behind of sends racing it on two nodes, new conversations and existing ones alike', async () => {
    const user = cluster.user('racer');
    const token = cluster.tokenFor(user);
    const [a, b] = cluster.nodes;
    const existing = await createConversation(api(a!.url, token), 'existing');
    const tabs = [await connectTab(a!.url, token), await connectTab(b!.url, token)];
    const sends = tabs.flatMap((tab, t) =>
      Array.from({ length: 30 }, (_, i) =>
        tab
          .request('message:send', {
            conversationId: i % 2 === 0 ? existing.id : null,
            content: `racing ${t}-${i}`,
            clientMessageId: `race-${t}-${i}`,
          })
          .catch(() => undefined),
      ),
    );
    const rest = Array.from({ length: 10 }, (_, i) => api(b!.url, token).post('/api/conversations', { title: `racing ${i}` }));
    const erased = api(a!.url, token).delete('/api/me');
    await Promise.all([...sends, ...rest, erased]);
    expect((await erased).status).toBe(204);
    // Whatever committed before the erasure went with it; nothing after it could make the user again.
    expect(await rowsOf(user)).toEqual({ erased: true, conversations: 0, messages: 0 });
    // And stays so: requests still arriving with the old token change nothing.
    await api(b!.url, token).post('/api/conversations', { title: 'late' });
    await postMessage(api(a!.url, token), existing.id, 'late', 'race-late').catch(() => undefined);
    expect(await rowsOf(user)).toEqual({ erased: true, conversations: 0, messages: 0 });
  });
});
