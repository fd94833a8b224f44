// The embedded mode (no DATABASE_URL): PGlite on disk under PGLITE_DIR, migrated at start-up, serving the
// same REST contract, and keeping its data across a restart. One PGlite at a time per file: they are slow to open.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { api, createConversation, expectError, postMessage } from '../helpers/api.ts';
import { migrationNames } from '../helpers/db.ts';
import { startGateway, type StartedGateway } from '../helpers/gateway.ts';

let dir: string;
let gw: StartedGateway | undefined;

// Each test has a directory of its own: any one runs alone (`-t`), and none depends on another's data.
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chat-pglite-'));
});

afterEach(async () => {
  await gw?.close();
  gw = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** Starts on the test's directory, writes a conversation with two messages (the first with a key), and stops. */
async function writeAndStop(): Promise<{ conversationId: string; messageIds: string[] }> {
  gw = await startGateway({ PGLITE_DIR: dir, DATABASE_URL: undefined });
  const alice = api(gw.url, gw.tokenFor('embedded-alice'));
  const c = await createConversation(alice, 'kept on disk');
  const m1 = await postMessage(alice, c.id, 'first', 'emb-1');
  const m2 = await postMessage(alice, c.id, 'second');
  await gw.close();
  gw = undefined;
  return { conversationId: c.id, messageIds: [m1.id, m2.id] };
}

describe('embedded PGlite on disk', () => {
  it('starts on an empty directory, migrates it, and serves writes and reads', async () => {
    gw = await startGateway({ PGLITE_DIR: dir, DATABASE_URL: undefined });
    expect(gw.config.databaseUrl).toBeUndefined();
    const executed = await gw.gateway.orm.em.fork().execute<{ name: string }[]>('select name from mikro_orm_migrations order by name');
    expect(executed.map((r) => r.name)).toEqual(migrationNames());

    const alice = api(gw.url, gw.tokenFor('embedded-alice'));
    const c = await createConversation(alice, 'kept on disk');
    const m1 = await postMessage(alice, c.id, 'first', 'emb-1');
    const m2 = await postMessage(alice, c.id, 'second');
    expect([m1.seq, m2.seq]).toEqual([1, 2]);

    // The same contract as on PostgreSQL: idempotent repeats, isolation.
    const repeat = await alice.post(`/api/conversations/${c.id}/messages`, { content: 'first', clientMessageId: 'emb-1' });
    expect(repeat.status).toBe(200);
    expect(repeat.body.message.id).toBe(m1.id);
    const bob = api(gw.url, gw.tokenFor('embedded-bob'));
    expectError(await bob.get(`/api/conversations/${c.id}/messages`), 404, 'NOT_FOUND');
    expect((await bob.get('/api/conversations')).body.conversations).toEqual([]);
    const ready = await api(gw.url).get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({ database: 'ok' });
  });

  it('finds the same conversation and messages after a restart on the same directory, and continues the seq', async () => {
    const { conversationId, messageIds } = await writeAndStop();
    gw = await startGateway({ PGLITE_DIR: dir, DATABASE_URL: undefined });
    const alice = api(gw.url, gw.tokenFor('embedded-alice'));
    const list = await alice.get('/api/conversations');
    expect(list.body.conversations.map((c: { id: string; title: string; lastSeq: number }) => [c.id, c.title, c.lastSeq])).toEqual([
      [conversationId, 'kept on disk', 2],
    ]);
    const history = await alice.get(`/api/conversations/${conversationId}/messages`);
    expect(history.body.messages.map((m: { id: string; content: string; seq: number }) => [m.id, m.seq, m.content])).toEqual([
      [messageIds[0], 1, 'first'],
      [messageIds[1], 2, 'second'],
    ]);
    // Idempotency survives the restart too: a late retry of the first message is not stored again.
    const late = await alice.post(`/api/conversations/${conversationId}/messages`, { content: 'first', clientMessageId: 'emb-1' });
    expect([late.status, late.body.message.id]).toEqual([200, messageIds[0]]);
    expect((await postMessage(alice, conversationId, 'third')).seq).toBe(3);

    // Erasure cascades in PGlite as in PostgreSQL.
    expect((await alice.delete('/api/me')).status).toBe(204);
    const left = await gw.gateway.orm.em
      .fork()
      .execute<{ n: number }[]>(
        `select (select count(*) from conversations where user_id = 'embedded-alice')::int + (select count(*) from messages where user_id = 'embedded-alice')::int as n`,
      );
    expect(left[0]!.n).toBe(0);
  });
});
