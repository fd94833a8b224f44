// User-affine routing through the committed load balancer: Debian's nginx runs deploy/nginx/nginx.conf (hashing on
// the SDK's `?affinity=` key) in front of three gateway nodes sharing PostgreSQL and Redis. SDK clients, as browser
// tabs would be, all come from 127.0.0.1, so only the key can tell them apart.
// Shown: every tab of one user lands on one node whatever its transport or how it got its token (a long-polling
// tab stays sticky through its many requests), the users spread over the nodes, and every tab converges; a tab
// without the key (turned off) still gets everything from wherever it lands.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { affinityKey, createChatClient, type ChatClient, type ChatClientOptions } from '../../src/sdk/index.ts';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { startNginx, type Nginx } from '../helpers/nginx.ts';

const USERS = 12;

let cluster: Cluster;
let lb: Nginx;
const clients: ChatClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3, env: { ASSISTANT: 'none', DB_POOL_MAX: '4' } });
  lb = await startNginx(cluster.nodes, { sticky: true });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await lb?.stop();
  await cluster?.close();
});

/** A connected SDK client through the balancer. */
async function tab(options: Partial<ChatClientOptions> & ({ token: string } | { getToken: () => Promise<string> })): Promise<ChatClient> {
  const chat = createChatClient({ url: lb.url, ...options });
  clients.push(chat);
  await new Promise<void>((resolve, reject) => {
    if (chat.connected) return resolve();
    const off = chat.on('status', (s) => {
      if (s === 'connected') resolve();
      if (s === 'disconnected') reject(new Error('refused'));
      if (s === 'connected' || s === 'disconnected') off();
    });
  });
  return chat;
}

/** Index of the node holding this client's socket. */
function nodeOf(chat: ChatClient): number {
  const i = cluster.nodes.findIndex((n) => n.gateway.sockets.nsp.sockets.has(chat.socket.id!));
  expect(i).toBeGreaterThanOrEqual(0);
  return i;
}

describe('user-affine routing: nginx hashing on the SDK’s affinity key, three nodes', () => {
  it('keeps every tab of a user on one node, spreads the users, and every tab converges', async () => {
    const users = Array.from({ length: USERS }, () => {
      const id = cluster.user('aff');
      return { id, token: cluster.tokenFor(id), tabs: [] as ChatClient[] };
    });
    for (const u of users) {
      u.tabs = await Promise.all([
        tab({ token: u.token }),
        tab({ token: u.token, transports: ['polling'] }),
        // The key from a token fetched before the first request (no fixed token to read it from).
        tab({ getToken: async () => u.token, transports: ['polling', 'websocket'] }),
      ]);
    }

    const placement = users.map((u) => u.tabs.map(nodeOf));
    for (const nodes of placement) expect(new Set(nodes).size).toBe(1);
    const used = new Set(placement.map((nodes) => nodes[0]));
    expect(used.size).toBeGreaterThan(1);

    // Without the key: the balancer falls back on the address, whatever node that is; the tab still gets everything.
    const plain = await tab({ token: users[0]!.token, userAffinity: false });

    // Every tab sends once; every tab (and the plain one, for its user) ends with all of its user's messages.
    const conversations = await Promise.all(users.map(async (u) => (await u.tabs[0]!.createConversation({ title: 'a' })).conversation.id));
    await Promise.all(users.flatMap((u, i) => u.tabs.map((t) => t.open(conversations[i]!))));
    await plain.open(conversations[0]!);
    await Promise.all(
      users.flatMap((u, i) =>
        u.tabs.map((t, j) => t.send({ conversationId: conversations[i]!, content: `from tab ${j}`, clientMessageId: `${u.id}-${j}` })),
      ),
    );
    const expected = ['from tab 0', 'from tab 1', 'from tab 2'];
    for (const [i, u] of users.entries()) {
      for (const t of i === 0 ? [...u.tabs, plain] : u.tabs) {
        await expect
          .poll(() =>
            t
              .messages(conversations[i]!)
              .map((m) => m.content)
              .sort(),
          )
          .toEqual(expected);
      }
    }
    // The polling tabs made many requests each and never left their node.
    expect(users.map((u) => u.tabs.map(nodeOf))).toEqual(placement);

    // What nginx saw: the key in the URLs of every kind of request (a WebSocket is logged once closed), never the token.
    for (const t of users[1]!.tabs) t.close();
    const key = affinityKey(users[1]!.id);
    const lines = async () => (await readFile(join(lb.dir, 'access.log'), 'utf8')).split('\n').filter((l) => l.includes(`affinity=${key}`));
    await expect
      .poll(async () => (await lines()).some((l) => /"GET \/socket\.io\/\?[^"]*transport=websocket[^"]*" 101 /.test(l)))
      .toBe(true);
    expect((await lines()).some((l) => /"POST \/socket\.io\/\?[^"]*transport=polling[^"]*&sid=[^"]*" 200 /.test(l))).toBe(true);
    const log = await readFile(join(lb.dir, 'access.log'), 'utf8');
    expect(log).not.toContain(users[1]!.token.split('.')[2]!);
  });
});
