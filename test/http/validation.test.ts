// What the REST API refuses, with which status and code, and that every refusal has the contract's
// error shape. MAX_MESSAGE_CHARS is set small so the limits are cheap to reach.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createConversation, expectError, type Api } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startGateway, type StartedGateway } from '../helpers/gateway.ts';

const MAX = 50;
let db: TestDatabase;
let gw: StartedGateway;
let client: Api;
let conversationId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  gw = await startGateway({ DATABASE_URL: db.url, MAX_MESSAGE_CHARS: String(MAX) });
  client = api(gw.url, gw.tokenFor('validation-user'));
  conversationId = (await createConversation(client, 'target')).id;
});

afterAll(async () => {
  await gw?.close();
  await db?.drop();
});

const messages = () => `/api/conversations/${conversationId}/messages`;
const storedCount = async () =>
  Number((await db.query<{ n: string }>('select count(*) as n from messages where conversation_id = $1', [conversationId]))[0]!.n);

describe('message content', () => {
  it('accepts 1 to MAX_MESSAGE_CHARS characters, counted as a user counts them', async () => {
    expect((await client.post(messages(), { content: 'x' })).status).toBe(201);
    const atLimit = await client.post(messages(), { content: 'y'.repeat(MAX) });
    expect(atLimit.status).toBe(201);
    expect(atLimit.body.message.content).toBe('y'.repeat(MAX));
    // 50 emoji are 100 UTF-16 units but 50 characters: allowed, and stored intact.
    const emoji = '😀'.repeat(MAX);
    const wide = await client.post(messages(), { content: emoji });
    expect(wide.status, wide.text).toBe(201);
    const [row] = await db.query<{ content: string }>('select content from messages where id = $1', [wide.body.message.id]);
    expect(row!.content).toBe(emoji);
    // Surrounding white space is part of the content, not a reason to refuse it.
    expect((await client.post(messages(), { content: '  padded  ' })).body.message.content).toBe('  padded  ');
  });

  it.each([
    ['empty', { content: '' }],
    ['white space only', { content: ' \n\t  ' }],
    ['one character over the limit', { content: 'z'.repeat(MAX + 1) }],
    ['one emoji over the limit', { content: '😀'.repeat(MAX + 1) }],
    ['missing', {}],
    ['not a string', { content: 42 }],
    ['null', { content: null }],
    ['a clientMessageId over 100 characters', { content: 'ok', clientMessageId: 'k'.repeat(101) }],
    ['an empty clientMessageId', { content: 'ok', clientMessageId: '' }],
  ])('refuses content that is %s with 400 VALIDATION and stores nothing', async (_name, body) => {
    const before = await storedCount();
    expectError(await client.post(messages(), body), 400, 'VALIDATION');
    expect(await storedCount()).toBe(before);
  });

  it("refuses an Idempotency-Key that disagrees with the body's clientMessageId, or is too long", async () => {
    const before = await storedCount();
    expectError(
      await client.post(messages(), { content: 'ok', clientMessageId: 'a' }, { headers: { 'idempotency-key': 'b' } }),
      400,
      'VALIDATION',
    );
    expectError(await client.post(messages(), { content: 'ok' }, { headers: { 'idempotency-key': 'k'.repeat(101) } }), 400, 'VALIDATION');
    expect(await storedCount()).toBe(before);
  });
});

describe('conversation titles', () => {
  it('accept up to 200 characters and refuse 201, on create and on rename', async () => {
    const ok = await client.post('/api/conversations', { title: 't'.repeat(200) });
    expect(ok.status).toBe(201);
    expect(ok.body.conversation.title).toBe('t'.repeat(200));
    expectError(await client.post('/api/conversations', { title: 't'.repeat(201) }), 400, 'VALIDATION');
    expectError(await client.patch(`/api/conversations/${conversationId}`, { title: 't'.repeat(201) }), 400, 'VALIDATION');
    expectError(await client.post('/api/conversations', { title: 7 }), 400, 'VALIDATION');
    expectError(await client.patch(`/api/conversations/${conversationId}`, {}), 400, 'VALIDATION');
    const [row] = await db.query<{ title: string }>('select title from conversations where id = $1', [conversationId]);
    expect(row!.title).toBe('target');
  });

  it('renames, and a blank title clears it', async () => {
    const renamed = await client.patch(`/api/conversations/${conversationId}`, { title: '  renamed  ' });
    expect(renamed.status).toBe(200);
    expect(renamed.body.conversation.title).toBe('renamed');
    const cleared = await client.patch(`/api/conversations/${conversationId}`, { title: '   ' });
    expect(cleared.body.conversation.title).toBeNull();
    await client.patch(`/api/conversations/${conversationId}`, { title: 'target' });
  });
});

describe('malformed requests', () => {
  it.each(['not-a-uuid', '123', '00000000-0000-0000-0000-00000000000g', `${'a'.repeat(36)}`])(
    'a malformed conversation id (%s) is 400 VALIDATION on every route',
    async (bad) => {
      const id = encodeURIComponent(bad);
      expectError(await client.get(`/api/conversations/${id}`), 400, 'VALIDATION');
      expectError(await client.patch(`/api/conversations/${id}`, { title: 'x' }), 400, 'VALIDATION');
      expectError(await client.delete(`/api/conversations/${id}`), 400, 'VALIDATION');
      expectError(await client.get(`/api/conversations/${id}/messages`), 400, 'VALIDATION');
      expectError(await client.post(`/api/conversations/${id}/messages`, { content: 'hi' }), 400, 'VALIDATION');
    },
  );

  it('malformed JSON is 400 VALIDATION', async () => {
    for (const raw of ['{"content": "unterminated', '{content: 1}', 'null x', '[']) {
      expectError(await client.post(messages(), undefined, { raw }), 400, 'VALIDATION');
      expectError(await client.post('/api/conversations', undefined, { raw }), 400, 'VALIDATION');
    }
  });

  it('a body over the size limit is 413 PAYLOAD_TOO_LARGE and nothing is stored', async () => {
    const before = await storedCount();
    const huge = JSON.stringify({ content: 'x'.repeat(64 * 1024) });
    expectError(await client.post(messages(), undefined, { raw: huge }), 413, 'PAYLOAD_TOO_LARGE');
    expect(await storedCount()).toBe(before);
  });

  it('the largest valid message fits the body limit in any valid JSON encoding', async () => {
    // With the default MAX_MESSAGE_CHARS (10000): clients whose JSON encoder escapes everything outside
    // ASCII (Python's json.dumps, the default of `requests`) send each emoji as a 12-byte surrogate-pair escape.
    const wide = await startGateway({ DATABASE_URL: db.url });
    try {
      const c = api(wide.url, wide.tokenFor('validation-user'));
      const asciiEscaped = `{"content":"${'\\ud83d\\ude00'.repeat(10_000)}"}`;
      expect(JSON.parse(asciiEscaped).content).toBe('😀'.repeat(10_000));
      const res = await c.post(messages(), undefined, { raw: asciiEscaped });
      expect(res.status, res.text.slice(0, 200)).toBe(201);
      expect(res.body.message.content).toBe('😀'.repeat(10_000));
      // One more character is refused as a validation error, not as a transport failure.
      const over = `{"content":"${'\\u0001'.repeat(10_001)}"}`;
      expectError(await c.post(messages(), undefined, { raw: over }), 400, 'VALIDATION');
    } finally {
      await wide.close();
    }
  });

  it('an unknown route under /api is 404 NOT_FOUND in the same shape', async () => {
    expectError(await client.get('/api/nothing-here'), 404, 'NOT_FOUND');
    expectError(await client.request('PUT', `/api/conversations/${conversationId}`, { title: 'x' }), 404, 'NOT_FOUND');
  });
});
