// Every event is answered by exactly one acknowledgement of the contract's shape, whatever its name and
// payload: property-based, over every command of the contract, server → client names and unknown names,
// with arbitrary values and targeted shapes (real and foreign ids, wrong types, huge strings under the
// buffer limit). Afterwards the node is healthy and a normal send works. A packet over maxHttpBufferSize
// closes that socket (by design), and only that socket.
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectTab, SOCKET_ERROR_CODES } from '../helpers/sockets.ts';

let cluster: Cluster;
let user: string;
let token: string;
let ids: { conversation: string; userMessage: string; reply: string; otherConversation: string; otherMessage: string };

const COMMANDS = [
  'conversation:create',
  'conversation:list',
  'conversation:rename',
  'conversation:delete',
  'message:send',
  'assistant:stop',
  'history:get',
  'auth:refresh',
];
const OTHER_NAMES = [
  'message:created',
  'message:delta',
  'message:updated',
  'auth:expired',
  'conversation:created',
  'error',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'unknown',
  '',
];
// socket.io-client refuses to emit these itself.
const CLIENT_RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);

beforeAll(async () => {
  cluster = await startCluster({ nodes: 2, env: { ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '0' } });
  user = cluster.user('fuzz');
  token = cluster.tokenFor(user);
  const setup = await connectTab(cluster.nodes[0]!.url, token);
  const sent = await setup.ok('message:send', { content: 'seed', clientMessageId: 'seed-1' });
  const reply = await setup.replyEnd((await setup.replyStart(sent.message.id)).id);
  const other = await connectTab(cluster.nodes[1]!.url, cluster.tokenFor(cluster.user('fuzz-other')));
  const foreign = await other.ok('message:send', { content: 'not yours', clientMessageId: 'other-1' });
  ids = {
    conversation: sent.message.conversationId,
    userMessage: sent.message.id,
    reply: reply.id,
    otherConversation: foreign.message.conversationId,
    otherMessage: foreign.message.id,
  };
  setup.close();
  other.close();
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

const HUGE = 20_000; // several of these still fit under maxHttpBufferSize (MAX_MESSAGE_CHARS * 12 + 4096 = 124,096 bytes)

function payloads() {
  const id = fc.oneof(
    fc
      .constantFrom(
        () => ids.conversation,
        () => ids.userMessage,
        () => ids.reply,
        () => ids.otherConversation,
        () => ids.otherMessage,
      )
      .map((f) => f()),
    fc.uuid(),
    fc.constant('01900000-0000-7000-8000-000000000000'),
  );
  const text = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary', maxLength: 50 }), // lone surrogates and control characters
    fc.constantFrom('', ' ', '\n\t ', 'a\u0000b', '\u0000', '\ud800', 'x'.repeat(10_001), 'é'.repeat(10_000)),
    fc.integer({ min: 1, max: HUGE }).map((n) => 'h'.repeat(n)),
  );
  const scalar = fc.oneof(
    fc.constant(null),
    fc.constant(undefined),
    fc.boolean(),
    fc.integer(),
    fc.double(),
    fc.constantFrom(-1, 0, 1, 50, 200, 201, 1e20, -0),
  );
  const value = fc.oneof(
    { weight: 3, arbitrary: id },
    { weight: 3, arbitrary: text },
    { weight: 2, arbitrary: scalar },
    { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) },
    { weight: 1, arbitrary: fc.object({ maxDepth: 1 }) },
  );
  const targeted = fc.record(
    {
      conversationId: value,
      messageId: value,
      content: value,
      clientMessageId: fc.oneof(value, fc.uuid()),
      title: value,
      limit: value,
      cursor: fc.oneof(value, fc.base64String()),
      before: value,
      after: value,
      token: value,
    },
    { requiredKeys: [] },
  );
  return fc.oneof(
    { weight: 4, arbitrary: targeted },
    { weight: 2, arbitrary: fc.anything({ maxDepth: 2 }) },
    { weight: 1, arbitrary: scalar },
    { weight: 1, arbitrary: text },
    { weight: 1, arbitrary: fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 4 }) },
  );
}

const eventNames = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...COMMANDS) },
  { weight: 2, arbitrary: fc.constantFrom(...OTHER_NAMES) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }).filter((s) => !CLIENT_RESERVED.has(s)) },
);

function expectAckShape(ack: unknown, context: string) {
  expect(ack, context).toBeTypeOf('object');
  const a = ack as Record<string, unknown>;
  if (a.ok === true) {
    expect(Object.keys(a).sort(), context).toEqual(['data', 'ok']);
    expect(a.data, context).toBeTypeOf('object');
    expect(a.data, context).not.toBeNull();
  } else {
    expect(a.ok, context).toBe(false);
    expect(Object.keys(a).sort(), context).toEqual(['error', 'ok']);
    const error = a.error as Record<string, unknown>;
    expect(
      Object.keys(error).filter((k) => !['code', 'message', 'retryAfterMs'].includes(k)),
      context,
    ).toEqual([]);
    expect(SOCKET_ERROR_CODES, context).toContain(error.code);
    // INTERNAL is in the vocabulary, but no input of a client should produce one: it means an unchecked input.
    expect(error.code, context).not.toBe('INTERNAL');
    expect(typeof error.message, context).toBe('string');
    expect((error.message as string).length, context).toBeGreaterThan(0);
    if ('retryAfterMs' in error) expect(error.retryAfterMs, context).toBeTypeOf('number');
  }
}

describe('every event gets exactly one acknowledgement', () => {
  it('for ~200 arbitrary events (names × payloads × argument counts)', async () => {
    const [A, B] = cluster.nodes;
    const target = await connectTab(A!.url, token, { name: 'target' });
    const watcher = await connectTab(B!.url, token, { name: 'watcher' });
    let emitted = 0;
    await fc.assert(
      fc.asyncProperty(
        eventNames,
        fc.oneof(fc.constant([] as unknown[]), fc.tuple(payloads()), fc.tuple(payloads(), payloads())),
        async (event, args) => {
          const context = `${event} ${JSON.stringify(args)?.slice(0, 300)}`;
          emitted++;
          const ack = await target.requestRaw(event, args, 15_000);
          expectAckShape(ack, context);
          if (!COMMANDS.includes(event)) expect((ack as { error: { code: string } }).error.code, context).toBe('VALIDATION');
        },
      ),
      { numRuns: 200 },
    );
    // Every ack packet id arrived exactly once, one per emit (a second ack would be dropped by the client silently).
    expect([...target.ackPackets.values()].every((n) => n === 1)).toBe(true);
    expect(target.ackPackets.size).toBe(emitted);
    expect(target.connected).toBe(true);
    expect(watcher.connected).toBe(true);

    // The nodes are healthy and a normal send works, with its reply, seen on both nodes.
    for (const node of cluster.nodes) {
      expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
    }
    const { message } = await target.ok('message:send', { content: 'still fine?', clientMessageId: 'after-fuzz' });
    for (const tab of [target, watcher]) {
      const end = await tab.replyEnd((await tab.replyStart(message.id)).id);
      expect(end).toMatchObject({ status: 'complete', content: 'Echo: still fine?' });
    }
  });

  it('events without an ack callback are ignored, and the socket goes on', async () => {
    const tab = await connectTab(cluster.nodes[0]!.url, token);
    for (const event of [...COMMANDS, 'unknown'])
      (tab.socket as unknown as { emit(e: string, ...a: unknown[]): void }).emit(event, {
        content: 'no ack',
        clientMessageId: `noack-${event}`,
      });
    expect((await tab.request('conversation:list', {})).ok).toBe(true);
    // message:send without an ack stored nothing.
    const rows = await cluster.db.query("select id from messages where client_message_id like 'noack-%'");
    expect(rows).toEqual([]);
  });

  it('content with a NUL character is refused as VALIDATION (PostgreSQL text cannot hold it), not INTERNAL', async () => {
    const tab = await connectTab(cluster.nodes[0]!.url, token);
    const cases = [
      await tab.request('message:send', { content: 'a\u0000b', clientMessageId: 'nul-1' }),
      await tab.request('message:send', { conversationId: ids.conversation, content: 'a\u0000b', clientMessageId: 'nul-2' }),
      await tab.request('message:send', { conversationId: ids.conversation, content: 'fine', clientMessageId: 'nul\u0000id' }),
      await tab.request('conversation:create', { title: 'nul\u0000title' }),
      await tab.request('conversation:rename', { conversationId: ids.conversation, title: 'nul\u0000title' }),
    ];
    for (const ack of cases) expect(ack).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
  });
});

describe('a packet over maxHttpBufferSize', () => {
  it('closes that socket only; the node stays healthy and a new socket works', async () => {
    const [A] = cluster.nodes;
    for (const transports of [['websocket'], ['polling']] as const) {
      const big = await connectTab(A!.url, token, { name: `big-${transports[0]}`, transports: [...transports] });
      const bystander = await connectTab(A!.url, token, { name: 'bystander' });
      const refused = big.request('message:send', { content: 'x'.repeat(200_000), clientMessageId: 'too-big' }).catch((err: Error) => err);
      expect(await big.disconnected()).toMatch(/transport (close|error)/);
      expect(await refused).toBeInstanceOf(Error);
      expect(bystander.connected).toBe(true);
      expect((await bystander.request('conversation:list', {})).ok).toBe(true);
      bystander.close();
    }
    expect((await fetch(`${A!.url}/healthz`)).status).toBe(200);
    const again = await connectTab(A!.url, token);
    expect((await again.request('message:send', { content: 'small again', clientMessageId: 'after-big' })).ok).toBe(true);
    const rows = await cluster.db.query("select id from messages where client_message_id = 'too-big'");
    expect(rows).toEqual([]);
  });
});
