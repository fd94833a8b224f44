// The audit trail: one line per conversation operation, reads included, with who, what, which ids, the outcome,
// the node, the request id and the door; never content or tokens; written to a file of its own when AUDIT_LOG
// says so. And what a user message records of its client.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createConversation, postMessage } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { eventually } from '../helpers/cluster.ts';
import { startGateway, type StartedGateway } from '../helpers/gateway.ts';
import { closeAllTabs, connectTab } from '../helpers/sockets.ts';

let db: TestDatabase;
let dir: string;
let gw: StartedGateway;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'chat-audit-'));
  gw = await startGateway({
    DATABASE_URL: db.url,
    AUDIT_LOG: join(dir, 'audit.log'),
    NODE_ID: 'audited-node',
    RECORD_CLIENT_ADDRESS: 'true',
  });
});
afterAll(async () => {
  closeAllTabs();
  await gw?.close();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

type Line = { audit: Record<string, unknown>; node: string };
const lines = async (): Promise<Line[]> =>
  (await readFile(join(dir, 'audit.log'), 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);

describe('the audit trail', () => {
  it('records every operation of both doors, reads included, with node, request id and door, and no content or token', async () => {
    const user = 'audited-user';
    const token = gw.tokenFor(user);
    const rest = api(gw.url, token);
    const c = await createConversation(rest, 'secret title');
    await rest.request('GET', '/api/conversations', undefined, { headers: { 'X-Request-Id': 'req-from-proxy-1' } });
    await postMessage(rest, c.id, 'secret content', 'audit-1');
    await rest.get(`/api/conversations/${c.id}/messages`);
    await rest.patch(`/api/conversations/${c.id}`, { title: 'another secret' });
    const tab = await connectTab(gw.url, token);
    await tab.ok('history:get', { conversationId: c.id });
    await tab.request('history:get', { conversationId: '00000000-0000-7000-8000-000000000000' });
    await rest.delete(`/api/conversations/${c.id}`);

    const expected = [
      'conversation.create',
      'conversation.list',
      'message.append',
      'message.history',
      'conversation.rename',
      'message.history',
      'message.history',
      'conversation.delete',
    ];
    const found = await eventually(async () => {
      const mine = (await lines()).filter((l) => l.audit.userId === user);
      return mine.length >= expected.length ? mine : undefined;
    }, 'the audit lines');
    expect(found.map((l) => l.audit.op)).toEqual(expected);
    for (const l of found) {
      expect(l.node).toBe('audited-node');
      expect(typeof l.audit.requestId).toBe('string');
      expect(['rest', 'socket']).toContain(l.audit.door);
    }
    expect(found[1]!.audit.requestId).toBe('req-from-proxy-1');
    expect(found.filter((l) => l.audit.door === 'socket').map((l) => l.audit.outcome)).toEqual(['ok', 'not_found']);
    expect(found.find((l) => l.audit.op === 'message.append')).toMatchObject({ audit: { conversationId: c.id, outcome: 'ok', seq: 1 } });
    const raw = await readFile(join(dir, 'audit.log'), 'utf8');
    for (const secret of ['secret content', 'secret title', 'another secret', token]) expect(raw).not.toContain(secret);
  });
});

describe('client metadata on user messages', () => {
  it('records the user agent, and the address when RECORD_CLIENT_ADDRESS is on, on both doors', async () => {
    const rest = api(gw.url, gw.tokenFor('metadata-user'));
    const c = await createConversation(rest, 'meta');
    const res = await rest.post(
      `/api/conversations/${c.id}/messages`,
      { content: 'over REST' },
      { headers: { 'user-agent': 'TodoApp/2.1 (test)' } },
    );
    expect(res.body.message.metadata).toEqual({ client: { userAgent: 'TodoApp/2.1 (test)', address: '127.0.0.1' } });
    const tab = await connectTab(gw.url, gw.tokenFor('metadata-user'), { extraHeaders: { 'user-agent': 'SocketTab/1.0' } });
    const sent = await tab.ok('message:send', { conversationId: c.id, content: 'over the socket', clientMessageId: 'meta-1' });
    expect(sent.message.metadata).toEqual({ client: { userAgent: 'SocketTab/1.0', address: '127.0.0.1' } });
    const [row] = await db.query<{ metadata: unknown }>('select metadata from messages where id = $1', [sent.message.id]);
    expect(row!.metadata).toEqual(sent.message.metadata);
  });

  it('records no address by default', async () => {
    const plain = await startGateway({ DATABASE_URL: db.url, NODE_ID: 'plain-node' });
    try {
      const rest = api(plain.url, plain.tokenFor('private-user'));
      const c = await createConversation(rest, 'private');
      const res = await rest.post(`/api/conversations/${c.id}/messages`, { content: 'hi' }, { headers: { 'user-agent': 'Private/1.0' } });
      expect(res.body.message.metadata).toEqual({ client: { userAgent: 'Private/1.0' } });
    } finally {
      await plain.close();
    }
  });
});
