// DATABASE_SCHEMA: the gateway's tables, indexes and migrations table live in a schema of their own, so it can
// share a database with the application it serves, whose own `users` table it must not touch.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createConversation, postMessage } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startGateway } from '../helpers/gateway.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  // The application's own table, as an auth library makes it.
  await db.query('create table public.users (id serial primary key, email text not null)');
  await db.query("insert into public.users (email) values ('ada@example.com')");
});
afterAll(async () => {
  await db?.drop();
});

describe('on PostgreSQL', () => {
  it("keeps every table of the gateway in its schema, beside the application's own users table", async () => {
    const gw = await startGateway({ DATABASE_URL: db.url, DATABASE_SCHEMA: 'chat' });
    try {
      const client = api(gw.url, gw.tokenFor('shared-db-user'));
      const c = await createConversation(client, 'in its own schema');
      await postMessage(client, c.id, 'hello', 'schema-1');
      // Served again by a second node on the same schema: nothing to migrate, same data.
      const again = await startGateway({ DATABASE_URL: db.url, DATABASE_SCHEMA: 'chat' });
      try {
        const history = await api(again.url, again.tokenFor('shared-db-user')).get(`/api/conversations/${c.id}/messages`);
        expect(history.body.messages.map((m: { content: string }) => m.content)).toEqual(['hello']);
      } finally {
        await again.close();
      }
    } finally {
      await gw.close();
    }
    const tables = await db.query<{ table_schema: string; table_name: string }>(
      "select table_schema, table_name from information_schema.tables where table_schema in ('public', 'chat') order by 1, 2",
    );
    expect(tables).toEqual([
      { table_schema: 'chat', table_name: 'conversations' },
      { table_schema: 'chat', table_name: 'messages' },
      { table_schema: 'chat', table_name: 'mikro_orm_migrations' },
      { table_schema: 'chat', table_name: 'users' },
      { table_schema: 'public', table_name: 'users' },
    ]);
    expect(await db.query('select id, email from public.users')).toEqual([{ id: 1, email: 'ada@example.com' }]);
    expect(await db.query("select id from chat.users where id = 'shared-db-user'")).toHaveLength(1);
  });

  it('refuses a schema name that is not a plain identifier', async () => {
    await expect(startGateway({ DATABASE_URL: db.url, DATABASE_SCHEMA: 'chat"; drop table x; --' })).rejects.toThrow(/DATABASE_SCHEMA/);
  });
});

describe('on the embedded database', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chat-schema-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('migrates into the schema, and finds its data there again after a restart', async () => {
    let id: string;
    const first = await startGateway({ PGLITE_DIR: dir, DATABASE_SCHEMA: 'chat' });
    try {
      const client = api(first.url, first.tokenFor('embedded-user'));
      id = (await createConversation(client, 'embedded')).id;
      const rows = await first.gateway.orm.em
        .fork()
        .execute<{ table_schema: string }[]>("select distinct table_schema from information_schema.tables where table_name = 'messages'");
      expect(rows.map((r) => r.table_schema)).toEqual(['chat']);
    } finally {
      await first.close();
    }
    const second = await startGateway({ PGLITE_DIR: dir, DATABASE_SCHEMA: 'chat' });
    try {
      const got = await api(second.url, second.tokenFor('embedded-user')).get(`/api/conversations/${id}`);
      expect(got.body.conversation.title).toBe('embedded');
    } finally {
      await second.close();
    }
  });
});
