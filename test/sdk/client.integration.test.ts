// The SDK against real gateways sharing a fresh PostgreSQL database: tabs are ChatClients. Lost broadcasts are
// simulated with `filterIncoming`, lost connections by closing the engine; every check is on the client's local
// view agreeing with the server's history, never on timing.
//
// Most tests run on one node without Redis: the Redis channel is shared by every test process on the machine, and
// any of them closing a node there disconnects sockets cluster-wide (see the report on realtime close()). One test
// runs across two nodes with Redis, for the cross-node path.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChatError, createChatClient, type ChatClient, type ChatClientOptions } from '../../src/sdk/index.ts';
import { userRoom, type MessageDto } from '../../src/shared/events.ts';
import { eventually, startCluster, type Cluster } from '../helpers/cluster.ts';
import { connectTab } from '../helpers/sockets.ts';

const WAIT_MS = 20_000;
// A paced echo (15 ms a word, deltas coalesced every 50 ms) so replies stream in several deltas.
const ECHO = { ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '15' };
let cluster: Cluster;
let pair: Cluster;
let A: string;
const clients = new Set<ChatClient>();

beforeAll(async () => {
  [cluster, pair] = await Promise.all([
    startCluster({ nodes: 1, env: { ...ECHO, REDIS_URL: undefined } }),
    startCluster({ nodes: 2, env: ECHO }),
  ]);
  A = cluster.nodes[0]!.url;
});
afterEach(() => {
  for (const c of clients) c.close();
  clients.clear();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all([cluster?.close(), pair?.close()]);
});

function client(
  url: string,
  options: Partial<ChatClientOptions> & ({ token: string } | { getToken: () => string | Promise<string> }),
): ChatClient {
  const c = createChatClient({ url, ackTimeoutMs: 5000, ...options });
  clients.add(c);
  return c;
}

/** Resolves with the first truthy `check()`, re-evaluated on every client event. */
function until<T>(chat: ChatClient, check: () => T | undefined | false, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const offs: (() => void)[] = [];
    const done = (fn: () => void) => {
      clearTimeout(timer);
      for (const off of offs) off();
      fn();
    };
    const test = () => {
      const value = check();
      if (value) done(() => resolve(value));
    };
    const timer = setTimeout(() => done(() => reject(new Error(`timed out waiting for ${what}`))), WAIT_MS);
    for (const e of ['message', 'delta', 'conversation', 'conversationDeleted', 'status', 'authExpired'] as const) {
      offs.push(chat.on(e, test));
    }
    test();
  });
}

const echo = (content: string) => `Echo: ${content}`;
const words = (n: number, tag = 'w') => Array.from({ length: n }, (_, i) => `${tag}${i}`).join(' ');
const seqsOf = (ms: readonly MessageDto[]) => ms.map((m) => m.seq);

/** Waits until the view holds `count` messages, all final (no reply still streaming). */
function settled(chat: ChatClient, conversationId: string, count: number) {
  return until(
    chat,
    () => {
      const ms = chat.messages(conversationId);
      return ms.length === count && ms.every((m) => m.status !== 'streaming') && ms;
    },
    `${count} settled messages in ${conversationId}`,
  );
}

async function serverHistory(chat: ChatClient, conversationId: string) {
  return (await chat.history({ conversationId, limit: 200 })).messages;
}

describe('commands and the followed view', () => {
  it('a send without conversationId starts and follows a conversation; a tab on another node opens it and sees the same reply', async () => {
    const user = pair.user('sdk');
    const [onA, onB] = pair.nodes.map((n) => n.url) as [string, string];
    const tabA = client(onA, { token: pair.tokenFor(user) });
    const tabB = client(onB, { token: pair.tokenFor(user) });
    const seenByB: string[] = [];
    tabB.on('conversation', (c) => seenByB.push(c.id));

    const content = words(12);
    const { message, conversation } = await tabA.send({ content });
    expect(message).toMatchObject({ seq: 1, role: 'user', content, conversationId: conversation.id });
    expect(message.clientMessageId).toMatch(/^[0-9a-f-]{36}$/);
    await tabB.open(conversation.id);

    const [, replyA] = await settled(tabA, conversation.id, 2);
    const [, replyB] = await settled(tabB, conversation.id, 2);
    expect(replyA).toMatchObject({ seq: 2, role: 'assistant', status: 'complete', content: echo(content) });
    expect(replyB).toEqual(replyA);
    expect(tabA.messages(conversation.id)).toEqual(await serverHistory(tabA, conversation.id));
    expect(seenByB).toContain(conversation.id);
    expect(tabA.conversations().map((c) => c.id)).toEqual([conversation.id]);
  });

  it('commands reject with ChatError codes; a validation failure is not retried', async () => {
    const chat = client(A, { token: cluster.tokenFor(cluster.user()) });
    let sends = 0;
    chat.socket.onAnyOutgoing((event) => void (event === 'message:send' && sends++));
    const blank = await chat.send({ content: '   ' }).catch((e: unknown) => e);
    expect(blank).toBeInstanceOf(ChatError);
    expect(blank).toMatchObject({ code: 'VALIDATION' });
    expect(sends).toBe(1);
    await expect(chat.open('0190a000-0000-7000-8000-000000000000')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(chat.messages('0190a000-0000-7000-8000-000000000000')).toEqual([]);
  });

  it('rename and delete reach the other tab; a deleted conversation leaves the view', async () => {
    const user = cluster.user();
    const tabA = client(A, { token: cluster.tokenFor(user) });
    const tabB = client(A, { token: cluster.tokenFor(user) });
    const { conversation } = await tabA.createConversation({ title: 'first' });
    await tabB.open(conversation.id);
    await tabA.renameConversation(conversation.id, 'second');
    await until(tabB, () => tabB.conversations().find((c) => c.id === conversation.id && c.title === 'second'), 'the rename on B');
    const deleted: string[] = [];
    tabB.on('conversationDeleted', (id) => deleted.push(id));
    await tabA.deleteConversation(conversation.id);
    await until(tabB, () => deleted.length > 0, 'the deletion on B');
    expect(deleted).toEqual([conversation.id]);
    expect(tabB.messages(conversation.id)).toEqual([]);
    expect(tabB.conversations()).toEqual([]);
  });

  it('stop ends a streaming reply with its partial text, and later deltas do not change it', async () => {
    const user = cluster.user();
    const chat = client(A, { token: cluster.tokenFor(user) });
    const other = client(A, { token: cluster.tokenFor(user) });
    const content = words(300);
    const { conversation } = await chat.send({ content });
    await other.open(conversation.id);
    const streaming = await until(
      chat,
      () => chat.messages(conversation.id).find((m) => m.role === 'assistant' && m.content.length > 0),
      'first delta',
    );
    const { message } = await other.stop(conversation.id, streaming.id);
    expect(message.status).toBe('stopped');
    expect(echo(content).startsWith(message.content)).toBe(true);
    expect(message.content.length).toBeLessThan(echo(content).length);
    const [, reply] = await settled(chat, conversation.id, 2);
    expect(reply).toEqual(message);
    await chat.synced();
    expect(chat.messages(conversation.id)[1]).toEqual(message);
    expect(other.messages(conversation.id)[1]).toEqual(message);
  });

  it('loadOlder pages back until the start of the conversation', async () => {
    const user = cluster.user();
    const chat = client(A, { token: cluster.tokenFor(user) });
    const { conversation } = await chat.createConversation();
    // ASSISTANT=echo: every send adds a reply, so 30 sends make 60 messages.
    for (let i = 0; i < 30; i++) await chat.send({ conversationId: conversation.id, content: `m${i}` });
    await settled(chat, conversation.id, 60);
    const reader = client(A, { token: cluster.tokenFor(user) });
    const latest = await reader.open(conversation.id);
    expect(seqsOf(latest)).toEqual(range(11, 60));
    expect(reader.hasOlder(conversation.id)).toBe(true);
    expect(seqsOf(await reader.loadOlder(conversation.id))).toEqual(range(1, 10));
    expect(reader.hasOlder(conversation.id)).toBe(false);
    expect(seqsOf(reader.messages(conversation.id))).toEqual(range(1, 60));
  });
});

describe('repair', () => {
  it('a lost message:created is noticed as a seq gap and filled from history, emitted once', async () => {
    const user = cluster.user();
    const sender = client(A, { token: cluster.tokenFor(user) });
    let dropped = 0;
    const tab = client(A, {
      token: cluster.tokenFor(user),
      filterIncoming: (event, payload) => {
        if (event === 'message:created' && payload.message.content === 'lost') {
          dropped++;
          return false;
        }
        return true;
      },
    });
    const { conversation } = await sender.createConversation();
    await tab.open(conversation.id);
    const emitted: number[] = [];
    tab.on('message', (m) => emitted.push(m.seq));

    await sender.send({ conversationId: conversation.id, content: 'lost' });
    const messages = await settled(tab, conversation.id, 2);
    expect(dropped).toBe(1);
    expect(messages).toEqual(await serverHistory(tab, conversation.id));
    expect(emitted.filter((s) => s === 1)).toHaveLength(1);
  });

  it('lost deltas leave the text as it was until message:updated brings all of it', async () => {
    const user = cluster.user();
    const sender = client(A, { token: cluster.tokenFor(user) });
    const tab = client(A, {
      token: cluster.tokenFor(user),
      filterIncoming: (event, payload) => !(event === 'message:delta' && payload.index === 1),
    });
    const { conversation } = await sender.createConversation();
    await tab.open(conversation.id);
    const texts: string[] = [];
    tab.on('delta', (_d, m) => texts.push(m.content));
    const content = words(40);
    await sender.send({ conversationId: conversation.id, content });
    const [, reply] = await settled(tab, conversation.id, 2);
    expect(reply!.content).toBe(echo(content));
    // Only delta 0 applied: every later index was ahead of the text once delta 1 was lost.
    expect(texts).toHaveLength(1);
    expect(echo(content).startsWith(texts[0]!)).toBe(true);
  });

  it('after a dropped connection the client reconnects, catches up by seq and refreshes the list, without duplicates', async () => {
    const user = cluster.user();
    const writer = client(A, { token: cluster.tokenFor(user) });
    const tab = client(A, {
      token: cluster.tokenFor(user),
      socketOptions: { reconnectionDelay: 1500, reconnectionDelayMax: 1500, randomizationFactor: 0 },
    });
    const { conversation } = await writer.createConversation();
    await writer.send({ conversationId: conversation.id, content: 'before' });
    await tab.open(conversation.id);
    await settled(tab, conversation.id, 2);
    const emitted: number[] = [];
    const statuses: string[] = [];
    const outgoing: string[] = [];
    tab.on('message', (m) => m.status !== 'streaming' && emitted.push(m.seq));
    tab.on('status', (s) => statuses.push(s));
    tab.socket.onAnyOutgoing((event, payload) => outgoing.push(event === 'history:get' ? `${event} after ${payload.after}` : event));

    tab.socket.io.engine.close();
    await writer.send({ conversationId: conversation.id, content: 'while away 1' });
    await writer.send({ conversationId: conversation.id, content: 'while away 2' });
    await settled(writer, conversation.id, 6);

    await until(tab, () => tab.connected, 'the reconnect');
    await tab.synced();
    const messages = await settled(tab, conversation.id, 6);
    expect(messages).toEqual(await serverHistory(tab, conversation.id));
    // Each final message once, whether it came live or from the catch-up.
    expect(emitted.sort((a, b) => a - b)).toEqual([3, 4, 5, 6]);
    expect(statuses).toEqual(['reconnecting', 'connected']);
    expect(outgoing).toEqual(expect.arrayContaining([expect.stringMatching(/^history:get after [26]$/), 'conversation:list']));
  });

  it('a send whose ack is lost with the connection is retried with the same clientMessageId and stored once', async () => {
    const chat = client(A, { token: cluster.tokenFor(cluster.user()) });
    const { conversation } = await chat.createConversation();
    const sent: string[] = [];
    chat.socket.onAnyOutgoing((event, payload) => void (event === 'message:send' && sent.push(payload.clientMessageId)));
    await until(chat, () => chat.connected, 'connected');

    const sending = chat.send({ conversationId: conversation.id, content: 'exactly once' });
    chat.socket.io.engine.close();
    const { message } = await sending;
    expect(sent.length).toBeGreaterThanOrEqual(2);
    expect(new Set(sent)).toEqual(new Set([message.clientMessageId]));
    const stored = (await serverHistory(chat, conversation.id)).filter((m) => m.content === 'exactly once');
    expect(stored).toEqual([expect.objectContaining({ id: message.id, seq: 1 })]);
  });

  it('a send made while the connection is coming back waits for it, however long, and goes out once', async () => {
    // Offline for about 2.5 s, five times the acknowledgement's timeout times the attempts: a send that spent its
    // timeouts while offline would fail with TIMEOUT before the socket is back.
    const chat = client(A, {
      token: cluster.tokenFor(cluster.user()),
      ackTimeoutMs: 250,
      sendAttempts: 2,
      socketOptions: { reconnectionDelay: 2500, reconnectionDelayMax: 2500, randomizationFactor: 0 },
    });
    const { conversation } = await chat.createConversation();
    await until(chat, () => chat.connected, 'connected');
    const sent: string[] = [];
    chat.socket.onAnyOutgoing((event, payload) => void (event === 'message:send' && sent.push(payload.clientMessageId)));

    chat.socket.io.engine.close();
    await until(chat, () => chat.status === 'reconnecting', 'reconnecting');
    const sending = chat.send({ conversationId: conversation.id, content: 'sent while offline', clientMessageId: 'offline-1' });
    const { message } = await sending;
    expect(message).toMatchObject({ clientMessageId: 'offline-1', seq: 1, content: 'sent while offline' });
    // Nothing went out while offline: one emit, after the reconnect.
    expect(sent).toEqual(['offline-1']);
    expect((await serverHistory(chat, conversation.id)).filter((m) => m.role === 'user')).toEqual([
      expect.objectContaining({ id: message.id, clientMessageId: 'offline-1' }),
    ]);
  });

  it('a socket the server lets go stays disconnected until connect(), then catches up messages and deletions', async () => {
    const user = cluster.user();
    const writer = client(A, { token: cluster.tokenFor(user) });
    const tab = client(A, { token: cluster.tokenFor(user) });
    const { conversation } = await writer.createConversation({ title: 'kept' });
    const { conversation: doomed } = await writer.createConversation({ title: 'doomed' });
    await tab.listConversations();
    await tab.open(conversation.id);
    const deleted: string[] = [];
    tab.on('conversationDeleted', (id) => deleted.push(id));

    cluster.nodes[0]!.gateway.fanout.disconnectUser(user);
    await until(tab, () => tab.status === 'disconnected', 'tab disconnected');
    await until(writer, () => writer.status === 'disconnected', 'writer disconnected');
    writer.connect();
    await writer.send({ conversationId: conversation.id, content: 'missed' });
    await writer.deleteConversation(doomed.id);
    await settled(writer, conversation.id, 2);
    expect(tab.status).toBe('disconnected');
    expect(tab.messages(conversation.id)).toEqual([]);

    tab.connect();
    await until(tab, () => tab.connected, 'reconnected');
    await tab.synced();
    expect(await settled(tab, conversation.id, 2)).toEqual(await serverHistory(tab, conversation.id));
    expect(deleted).toEqual([doomed.id]);
    expect(tab.conversations().map((c) => c.id)).toEqual([conversation.id]);
  });
});

describe('convergence without new traffic', () => {
  /** The row as PostgreSQL holds it, read with plain SQL (not through the gateway). */
  async function row(id: string) {
    const [r] = await cluster.db.query<{ status: string; content: string }>('select status, content from messages where id = $1', [id]);
    return r;
  }

  it('a tab whose connection dropped mid-reply, and so missed its end, shows the stored reply after reconnecting', async () => {
    const user = cluster.user();
    const writer = client(A, { token: cluster.tokenFor(user) });
    // The reconnect's handshake waits for this gate, so the tab comes back only once the reply has ended.
    let open = () => {};
    let gate = Promise.resolve();
    const tab = client(A, {
      getToken: async () => {
        await gate;
        return cluster.tokenFor(user);
      },
      // No quiet-stream re-reads: the catch-up after the reconnect alone must bring the end of the reply.
      staleStreamMs: Infinity,
      socketOptions: { reconnectionDelay: 100, reconnectionDelayMax: 100 },
    });
    const { conversation } = await writer.createConversation();
    await tab.open(conversation.id);
    const content = words(150);
    await writer.send({ conversationId: conversation.id, content });
    const partial = await until(
      tab,
      () => tab.messages(conversation.id).find((m) => m.role === 'assistant' && m.content.length > 0),
      'the reply streaming on the tab',
    );

    gate = new Promise((resolve) => (open = resolve));
    tab.socket.io.engine.close();
    expect(tab.messages(conversation.id)[1]).toMatchObject({ id: partial.id, status: 'streaming' });
    await eventually(async () => ((await row(partial.id))?.status === 'complete' ? true : undefined), 'the reply stored complete');
    const outgoing: string[] = [];
    tab.socket.onAnyOutgoing((event, payload) => outgoing.push(event === 'history:get' ? `${event} after ${payload.after}` : event));
    expect(tab.messages(conversation.id)[1]!.status).toBe('streaming');

    open();
    const [, reply] = await settled(tab, conversation.id, 2);
    await tab.synced();
    expect(reply).toMatchObject({ id: partial.id, status: 'complete', content: echo(content) });
    expect(await row(partial.id)).toEqual({ status: 'complete', content: reply!.content });
    expect(tab.messages(conversation.id)).toEqual(await serverHistory(tab, conversation.id));
    // Read again from below the reply held streaming, not only after lastSeq.
    expect(outgoing).toContain('history:get after 1');
    expect(outgoing.every((e) => e.startsWith('history:get') || e === 'conversation:list')).toBe(true);
  });

  it('sync:required after events were lost makes the tab catch up its messages and its list', async () => {
    const user = cluster.user();
    const tab = client(A, { token: cluster.tokenFor(user) });
    const { conversation } = await tab.createConversation({ title: 'kept' });
    await tab.send({ conversationId: conversation.id, content: 'hello' });
    await settled(tab, conversation.id, 2);
    const { gateway } = cluster.nodes[0]!;
    // Stored, never broadcast: what a tab misses while the fan-out between nodes is interrupted.
    await gateway.services.messages.append(user, { conversationId: conversation.id, content: 'never broadcast' });
    await gateway.services.conversations.create(user, { title: 'never broadcast either' });
    const outgoing: string[] = [];
    tab.socket.onAnyOutgoing((event) => outgoing.push(event));
    expect(tab.messages(conversation.id)).toHaveLength(2);
    expect(tab.conversations()).toHaveLength(1);

    gateway.sockets.nsp.to(userRoom(user)).emit('sync:required', { reason: 'fanout_interrupted', spreadMs: 200 });
    await until(tab, () => tab.messages(conversation.id).length === 3 && tab.conversations().length === 2, 'the catch-up');
    await tab.synced();
    expect(tab.messages(conversation.id)).toEqual(await serverHistory(tab, conversation.id));
    expect(tab.messages(conversation.id)[2]).toMatchObject({ seq: 3, content: 'never broadcast' });
    const local = tab.conversations();
    expect(local).toEqual((await tab.listConversations()).conversations);
    // One from the catch-up, one from the check just above.
    expect(outgoing.filter((e) => e === 'conversation:list')).toHaveLength(2);
  });

  it('a streaming reply whose deltas and end never reach the tab is read again while quiet, until it ends as stored', async () => {
    const user = cluster.user();
    const tab = client(A, { token: cluster.tokenFor(user), staleStreamMs: 300 });
    const { conversation } = await tab.createConversation();
    await tab.open(conversation.id);
    const { gateway } = cluster.nodes[0]!;
    const started = await gateway.services.messages.append(user, {
      conversationId: conversation.id,
      content: '',
      role: 'assistant',
      status: 'streaming',
      metadata: { deltaIndex: 0 },
    });
    // The tab hears the reply start, and nothing after it.
    gateway.fanout.publish(started.broadcasts);
    const { id } = started.data.message;
    await until(tab, () => tab.messages(conversation.id).find((m) => m.id === id), 'the reply on the tab');

    // Saved progress (never broadcast), then the end (never broadcast either), as the reply's node writes them.
    await cluster.db.query(`update messages set content = $2, metadata = $3::jsonb, updated_at = now() where id = $1`, [
      id,
      'Half of',
      JSON.stringify({ deltaIndex: 2 }),
    ]);
    const half = await until(
      tab,
      () => tab.messages(conversation.id).find((m) => m.id === id && m.content === 'Half of'),
      'the saved text',
    );
    expect(half.status).toBe('streaming');
    await cluster.db.query(
      `update messages set status = 'complete', content = $2, metadata = $3::jsonb, updated_at = now() where id = $1`,
      [id, 'Half of the reply.', JSON.stringify({ deltaIndex: 3 })],
    );
    await settled(tab, conversation.id, 1);
    await tab.synced();
    expect(tab.messages(conversation.id)).toEqual(await serverHistory(tab, conversation.id));
    expect(await row(id)).toEqual({ status: 'complete', content: 'Half of the reply.' });
  });
});

describe('tokens', () => {
  it('with getToken the token is renewed on the open socket before it expires', async () => {
    const user = cluster.user();
    // Six-second tokens: the client renews at half the lifetime left, three seconds before the end, ample for one
    // round trip on a busy machine.
    const tokens: string[] = [];
    const expired: unknown[] = [];
    const chat = client(A, {
      getToken: () => {
        tokens.push(cluster.tokenFor(user, 6));
        return tokens.at(-1)!;
      },
    });
    chat.on('authExpired', (e) => expired.push(e));
    await until(chat, () => chat.connected, 'connected');
    // A socket of the test's own on the first token: the server's end of it is the moment past which the client
    // must still be connected.
    const barrier = await connectTab(A, tokens[0]!, { name: 'barrier' });
    await barrier.waitFor('auth:expired');
    expect(chat.connected).toBe(true);
    expect(expired).toEqual([]);
    expect(tokens.length).toBeGreaterThanOrEqual(2);
    await expect(chat.listConversations()).resolves.toMatchObject({ conversations: [] });
    barrier.close();
  });

  it('with a fixed token, auth:expired is reported and refreshToken(token) gets back in', async () => {
    const user = cluster.user();
    const chat = client(A, { token: cluster.tokenFor(user, 2) });
    const expired: { exp?: number }[] = [];
    chat.on('authExpired', (e) => expired.push(e));
    await until(chat, () => expired.length > 0 && chat.status === 'disconnected', 'auth:expired');
    expect(expired[0]!.exp).toEqual(expect.any(Number));
    const { exp } = await chat.refreshToken(cluster.tokenFor(user, 3600));
    expect(exp).toBeGreaterThan(Date.now() / 1000 + 3000);
    expect(chat.connected).toBe(true);
  });
});

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
