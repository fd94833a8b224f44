// A fresh PostgreSQL database per test file: created empty here, given its schema only by the project's
// migrations (createGateway / initOrm with migrate on, or the migrator/CLI under test), dropped in afterAll.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** The machine's PostgreSQL (trust auth); TEST_PG_URL points the suite elsewhere. */
export const ADMIN_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** application_name of the suite's own checking connections, so tests can cut every other one. */
export const CHECK_APP_NAME = 'chat-tests-check';

export function urlFor(database: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Runs one statement on the admin database (CREATE/DROP DATABASE cannot run in a pool's transaction). */
export async function adminQuery(text: string, params: unknown[] = []): Promise<pg.QueryResultRow[]> {
  const client = new pg.Client({ connectionString: ADMIN_URL, application_name: CHECK_APP_NAME });
  await client.connect();
  try {
    return (await client.query(text, params)).rows;
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  name: string;
  url: string;
  /** Plain SQL against the test database, for checking what really got stored. */
  query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /** Closes the checking pool and drops the database, forcibly (gateways still connected are cut off). */
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `chat_t_${randomBytes(6).toString('hex')}`;
  await adminQuery(`create database "${name}"`);
  const url = urlFor(name);
  // Checks open on demand: a test that drops its gateway's connections must not lose this pool too.
  let pool: pg.Pool | undefined;
  const poolFor = () => {
    if (!pool) {
      pool = new pg.Pool({ connectionString: url, max: 2, application_name: CHECK_APP_NAME });
      // An idle checking connection cut by `drop database … with (force)` must not crash the worker.
      pool.on('error', () => {});
    }
    return pool;
  };
  return {
    name,
    url,
    async query(text, params) {
      const result = await poolFor().query(text, params as unknown[]);
      return result.rows;
    },
    async drop() {
      await pool?.end().catch(() => undefined);
      pool = undefined;
      await adminQuery(`drop database if exists "${name}" with (force)`);
    },
  };
}

/** Names of the tables in the public schema, sorted. */
export async function tablesOf(db: TestDatabase): Promise<string[]> {
  const rows = await db.query<{ table_name: string }>(
    `select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`,
  );
  return rows.map((r) => r.table_name);
}

/** The project's migrations, oldest first, as MikroORM names them (file name without extension). */
export function migrationNames(): string[] {
  const dir = fileURLToPath(new URL('../../migrations', import.meta.url));
  return readdirSync(dir)
    .filter((f) => /^Migration\w+\.ts$/.test(f))
    .map((f) => f.replace(/\.ts$/, ''))
    .sort();
}
