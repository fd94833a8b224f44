// GET /api/me/export: all of a user's conversations and messages, as one JSON download written while it is read,
// so a user with a long history costs the node one page at a time, not the whole history in memory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createConversation, expectError, postMessage } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { signToken, spawnNode } from '../helpers/cluster.ts';
import { startGateway, TEST_SECRET, type StartedGateway } from '../helpers/gateway.ts';

let db: TestDatabase;
let gw: StartedGateway;
const BIG = 'export-big';
const MESSAGES = 10_000;

beforeAll(async () => {
  db = await createTestDatabase();
  gw = await startGateway({ DATABASE_URL: db.url, READ_RATE_LIMIT: '1000' });
  // A long history, written straight into the tables (10,000 sends would only slow the test down).
  const client = api(gw.url, gw.tokenFor(BIG));
  const c = await createConversation(client, 'long');
  await db.query(
    `insert into messages (id, conversation_id, user_id, seq, role, status, content, created_at, updated_at)
     select gen_random_uuid(), $1, $2, n, 'user', 'complete', repeat('x', 1000) || n, now(), now() from generate_series(1, $3) n`,
    [c.id, BIG, MESSAGES],
  );
  await db.query('update conversations set last_seq = $2 where id = $1', [c.id, MESSAGES]);
  await createConversation(client, 'empty one');
});
afterAll(async () => {
  await gw?.close();
  await db?.drop();
});

describe('GET /api/me/export', () => {
  it("serves a history larger than the node's whole heap: it is written as it is read, never held", async () => {
    // The node may hold at most 96 MB of JavaScript objects (about 40 MB of them its own at rest); the export is
    // about 135 MB of text. Held whole (rows, then their JSON), it could not be produced at all.
    const owner = 'export-huge';
    const node = await spawnNode({
      DATABASE_URL: db.url,
      JWT_SECRET: TEST_SECRET,
      READ_RATE_LIMIT: '1000',
      NODE_OPTIONS: '--max-old-space-size=96',
    });
    try {
      const token = signToken(owner, 3600, TEST_SECRET);
      const c = await createConversation(api(node.url, token), 'huge');
      await db.query(
        `insert into messages (id, conversation_id, user_id, seq, role, status, content, created_at, updated_at)
         select gen_random_uuid(), $1, $2, n, 'user', 'complete', repeat('y', 2000), now(), now() from generate_series(1, 60000) n`,
        [c.id, owner],
      );
      const res = await fetch(`${node.url}/api/me/export`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      let bytes = 0;
      let tail = '';
      try {
        for await (const chunk of res.body!) {
          bytes += (chunk as Uint8Array).byteLength;
          tail = (tail + Buffer.from(chunk as Uint8Array).toString()).slice(-200);
        }
      } catch (err) {
        // A download cut short: say why, from the node's side (its warnings and errors, whether it is still alive).
        const exit = await Promise.race([node.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 2000))]);
        const said = node.logs.filter((l) => Number(l.level) >= 40).map((l) => JSON.stringify(l));
        throw new Error(
          `export cut after ${bytes} bytes (${(err as Error).message}); node: ${JSON.stringify(exit)}; node said: ${said.join('\n') || 'nothing'}`,
        );
      }
      expect(bytes).toBeGreaterThan(125_000_000);
      expect(tail.endsWith(']}]}')).toBe(true);
      expect(node.process.exitCode).toBeNull();
    } finally {
      await node.kill('SIGTERM');
    }
  });

  it('is the whole history, in order, as JSON: conversations oldest first, messages by seq', async () => {
    const res = await api(gw.url, gw.tokenFor(BIG)).get('/api/me/export');
    expect(res.status).toBe(200);
    const body = res.body as {
      userId: string;
      exportedAt: string;
      conversations: { title: string; messages: { seq: number; content: string }[] }[];
    };
    expect(body.userId).toBe(BIG);
    expect(body.conversations.map((c) => [c.title, c.messages.length])).toEqual([
      ['long', MESSAGES],
      ['empty one', 0],
    ]);
    const seqs = body.conversations[0]!.messages.map((m) => m.seq);
    expect(seqs).toEqual(Array.from({ length: MESSAGES }, (_, i) => i + 1));
  });

  it("holds only the user's own data, and costs read allowance", async () => {
    const mine = api(gw.url, gw.tokenFor('export-small'));
    const c = await createConversation(mine, 'small');
    await postMessage(mine, c.id, 'only mine', 'small-1');
    const body = (await mine.get('/api/me/export')).body as { conversations: { id: string; messages: { content: string }[] }[] };
    expect(body.conversations.map((x) => x.id)).toEqual([c.id]);
    expect(body.conversations[0]!.messages.map((m) => m.content)).toEqual(['only mine']);
    const limited = await startGateway({ DATABASE_URL: db.url, READ_RATE_LIMIT: '60', READ_RATE_WINDOW_S: '60' });
    try {
      const client = api(limited.url, limited.tokenFor('export-limited'));
      expect((await client.get('/api/me/export')).status).toBe(200);
      expectError(await client.get('/api/me/export'), 429, 'RATE_LIMITED');
    } finally {
      await limited.close();
    }
  });
});
