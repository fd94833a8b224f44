// The migrations are the only thing that creates the schema: up, down and up again on a fresh PostgreSQL
// database, through the MikroORM migrator and through the CLI commands operators run (npm run migrate…).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { api, createConversation, postMessage } from '../helpers/api.ts';
import { createTestDatabase, migrationNames, tablesOf, type TestDatabase } from '../helpers/db.ts';
import { startGateway, type StartedGateway } from '../helpers/gateway.ts';

const APP_TABLES = ['conversations', 'messages', 'users'];
const appTables = async (db: TestDatabase) => (await tablesOf(db)).filter((t) => APP_TABLES.includes(t));
const executed = async (db: TestDatabase) =>
  (await db.query<{ name: string }>('select name from mikro_orm_migrations order by name')).map((r) => r.name);

/** What the schema promises beyond the tables: the constraints and indexes isolation and seq rely on. */
async function schemaFacts(db: TestDatabase) {
  const constraints = await db.query<{ name: string; def: string }>(
    `select conname as name, pg_get_constraintdef(oid) as def from pg_constraint
      where conrelid in ('users'::regclass, 'conversations'::regclass, 'messages'::regclass) order by conname`,
  );
  const indexes = await db.query<{ name: string; def: string }>(
    `select indexname as name, indexdef as def from pg_indexes where schemaname = 'public' and tablename in ('conversations', 'messages') order by indexname`,
  );
  return {
    constraints: Object.fromEntries(constraints.map((c) => [c.name, c.def])),
    indexes: Object.fromEntries(indexes.map((i) => [i.name, i.def])),
  };
}

function expectFullSchema(facts: Awaited<ReturnType<typeof schemaFacts>>) {
  expect(facts.constraints).toMatchObject({
    conversations_user_id_foreign: expect.stringMatching(/FOREIGN KEY \(user_id\) REFERENCES users\(id\) ON DELETE CASCADE/),
    messages_conversation_id_foreign: expect.stringMatching(
      /FOREIGN KEY \(conversation_id\) REFERENCES conversations\(id\) ON DELETE CASCADE/,
    ),
    messages_conversation_id_seq_unique: 'UNIQUE (conversation_id, seq)',
    messages_role_check: expect.stringMatching(/role.*user.*assistant.*system/),
    messages_status_check: expect.stringMatching(/status.*complete.*streaming.*stopped.*failed/),
  });
  expect(facts.indexes.messages_user_id_client_message_id_unique).toMatch(
    /CREATE UNIQUE INDEX .* ON public\.messages USING btree \(user_id, client_message_id\) WHERE \(client_message_id IS NOT NULL\)/,
  );
  expect(facts.indexes.conversations_user_id_updated_at_index).toMatch(/\(user_id, updated_at DESC, id DESC\)/);
}

describe('the MikroORM migrator on a fresh database', () => {
  let db: TestDatabase;
  let gw: StartedGateway;

  // A fresh database and gateway for each test: any one runs alone (`-t`), whatever the others did to the schema.
  beforeEach(async () => {
    db = await createTestDatabase();
    // MIGRATE_ON_START=false: the gateway must not create anything by itself.
    gw = await startGateway({ DATABASE_URL: db.url, MIGRATE_ON_START: 'false' });
  });

  afterEach(async () => {
    await gw?.close();
    await db?.drop();
  });

  it('finds an empty database when start-up migration is off', async () => {
    expect(await appTables(db)).toEqual([]);
    expect((await gw.gateway.orm.migrator.getPending()).map((m) => m.name)).toEqual(migrationNames());
  });

  it('up creates every table, constraint and index; the entities match the migrated schema', async () => {
    const applied = await gw.gateway.orm.migrator.up();
    expect(applied.map((m) => m.name)).toEqual(migrationNames());
    expect(await appTables(db)).toEqual(APP_TABLES);
    expect(await executed(db)).toEqual(migrationNames());
    expectFullSchema(await schemaFacts(db));
    expect(await gw.gateway.orm.migrator.getPending()).toEqual([]);
    // Entities and migrations describe one schema: nothing left for a schema diff to do.
    const drift = await gw.gateway.orm.schema.getUpdateSchemaSQL({ wrap: false });
    expect(drift.trim()).toBe('');
  });

  it('the migrated schema serves the gateway', async () => {
    await gw.gateway.orm.migrator.up();
    const client = api(gw.url, gw.tokenFor('mig-user'));
    const c = await createConversation(client, 'after up');
    expect((await postMessage(client, c.id, 'hello')).seq).toBe(1);
  });

  it('down reverts one migration; down to 0 removes every table; up again restores a working, empty schema', async () => {
    const names = migrationNames();
    await gw.gateway.orm.migrator.up();
    const reverted = await gw.gateway.orm.migrator.down();
    expect(reverted.map((m) => m.name)).toEqual([names[names.length - 1]]);
    expect(await executed(db)).toEqual(names.slice(0, -1));

    await gw.gateway.orm.migrator.down({ to: 0 });
    expect(await appTables(db)).toEqual([]);
    expect(await executed(db)).toEqual([]);

    const again = await gw.gateway.orm.migrator.up();
    expect(again.map((m) => m.name)).toEqual(names);
    expect(await appTables(db)).toEqual(APP_TABLES);
    expectFullSchema(await schemaFacts(db));
    expect(await db.query('select * from conversations')).toEqual([]);

    const client = api(gw.url, gw.tokenFor('mig-user'));
    const c = await createConversation(client, 'after up down up');
    expect((await postMessage(client, c.id, 'still works', 'cm-1')).seq).toBe(1);
  });
});

describe('the migration CLI (npm run migrate / migrate:down)', () => {
  let db: TestDatabase;
  const root = fileURLToPath(new URL('../..', import.meta.url));

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterAll(async () => {
    await db?.drop();
  });

  /** Runs an npm script the way an operator does, with DATABASE_URL pointing at the test database. */
  function npmRun(script: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    // Inside `npm test` npm_execpath is npm's own CLI; run it on this Node (24) so the scripts do too.
    const npmCli = process.env.npm_execpath;
    const [cmd, argv] = npmCli && /\.c?js$/.test(npmCli) ? [process.execPath, [npmCli]] : ['npm', []];
    const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: db.url };
    delete env.PGLITE_DIR;
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, [...argv, 'run', script, ...(args.length ? ['--', ...args] : [])], {
        cwd: root,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('migrate applies every migration, migrate:down reverts the latest, --to 0 reverts all, migrate restores', async () => {
    const names = migrationNames();
    expect(await appTables(db)).toEqual([]);

    const up = await npmRun('migrate');
    expect(up.code, up.stderr + up.stdout).toBe(0);
    expect(up.stdout).toMatch(/migrated up/i);
    expect(await appTables(db)).toEqual(APP_TABLES);
    expect(await executed(db)).toEqual(names);
    expectFullSchema(await schemaFacts(db));

    const down = await npmRun('migrate:down');
    expect(down.code, down.stderr + down.stdout).toBe(0);
    expect(down.stdout).toMatch(/migrated down/i);
    expect(await executed(db)).toEqual(names.slice(0, -1));

    const downAll = await npmRun('migrate:down', '--to', '0');
    expect(downAll.code, downAll.stderr + downAll.stdout).toBe(0);
    expect(await appTables(db)).toEqual([]);
    expect(await executed(db)).toEqual([]);

    const again = await npmRun('migrate');
    expect(again.code, again.stderr + again.stdout).toBe(0);
    expect(await appTables(db)).toEqual(APP_TABLES);
    expect(await executed(db)).toEqual(names);
    expectFullSchema(await schemaFacts(db));

    // Nothing pending: running it again is a no-op that still succeeds.
    const noop = await npmRun('migrate');
    expect(noop.code, noop.stderr + noop.stdout).toBe(0);
    expect(await executed(db)).toEqual(names);
  });
});
