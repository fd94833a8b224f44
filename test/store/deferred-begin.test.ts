// A transaction's BEGIN rides with its first statement (src/db/deferred-begin.ts): one round trip less, and
// the same transaction as before. On a real PostgreSQL connection: what is committed stays, what is rolled back
// is gone (first statement plain, parameterized or failing), and a transaction with no statement sends nothing.
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deferBegin, deferBeginOn } from '../../src/db/deferred-begin.ts';
import { initOrm } from '../../src/db/orm.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
let client: pg.Client;
/** Queries that reached the connection, in the order sent. */
let sent: string[];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.query('create table t (id int primary key, v int not null check (v >= 0))');
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: unknown }).query = (...args: unknown[]) => {
    sent.push(typeof args[0] === 'string' ? args[0] : '(query object)');
    return query(...args);
  };
  deferBeginOn(client);
});
afterAll(async () => {
  await client?.end();
  await db?.drop();
});
beforeEach(async () => {
  await db.query('delete from t');
  sent = [];
});

const rows = async () => (await db.query<{ id: number }>('select id from t order by id')).map((r) => r.id);

describe('a deferred BEGIN', () => {
  it('goes out with the first statement: begin, insert, insert, commit take three round trips and commit both', async () => {
    await client.query('begin');
    const inserted = await client.query('insert into t values (1, 1) returning id');
    await client.query('insert into t values (2, 2)');
    await client.query('commit');
    expect(inserted.rows).toEqual([{ id: 1 }]);
    expect(sent).toEqual(['begin;insert into t values (1, 1) returning id', 'insert into t values (2, 2)', 'commit']);
    expect(await rows()).toEqual([1, 2]);
  });

  it('answers the first statement with its own result (an UPDATE reports its row count)', async () => {
    await db.query('insert into t values (1, 1), (2, 2)');
    await client.query('begin');
    const updated = await client.query('update t set v = v + 1');
    await client.query('commit');
    expect({ command: updated.command, rowCount: updated.rowCount }).toEqual({ command: 'UPDATE', rowCount: 2 });
    expect(sent).toEqual(['begin;update t set v = v + 1', 'commit']);
  });

  it('keeps the first statement inside the transaction: a rollback undoes it', async () => {
    await client.query('begin');
    await client.query('insert into t values (1, 1)');
    await client.query('rollback');
    expect(await rows()).toEqual([]);
  });

  it('a parameterized first statement is queued behind a real begin, and is inside the transaction too', async () => {
    await client.query('begin');
    await client.query('insert into t values ($1, $2)', [1, 1]);
    await client.query('rollback');
    expect(sent).toEqual(['begin', 'insert into t values ($1, $2)', 'rollback']);
    expect(await rows()).toEqual([]);
  });

  it('a failing first statement fails as itself, leaves the transaction aborted, and the rollback works', async () => {
    await client.query('begin');
    await expect(client.query('insert into t values (1, -1)')).rejects.toThrow(/check constraint/);
    await expect(client.query('insert into t values (2, 2)')).rejects.toThrow(/current transaction is aborted/);
    await client.query('rollback');
    await client.query('insert into t values (3, 3)');
    expect(await rows()).toEqual([3]);
  });

  it('a transaction with no statement sends nothing and leaves the connection outside any transaction', async () => {
    await client.query('begin');
    await client.query('commit');
    await client.query('begin');
    await client.query('rollback');
    expect(sent).toEqual([]);
    await expect(client.query('savepoint s')).rejects.toThrow(/transaction blocks/);
  });
});

describe('a pooled client', () => {
  it('goes back to the pool holding no BEGIN, whoever left one held', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    deferBegin(pool);
    try {
      const first = await pool.connect();
      await first.query('begin');
      first.release();
      const next = await pool.connect();
      const [{ pid }] = (await next.query('select pg_backend_pid() as pid')).rows;
      const [activity] = await db.query<{ query: string; state: string }>('select query, state from pg_stat_activity where pid = $1', [pid]);
      next.release();
      expect(activity).toEqual({ query: 'select pg_backend_pid() as pid', state: 'idle' });
    } finally {
      await pool.end();
    }
  });
});

describe("the gateway's PostgreSQL pool", () => {
  it('sends a unit of work\'s BEGIN with its first statement (what PostgreSQL saw, from pg_stat_activity)', async () => {
    const orm = await initOrm({ databaseUrl: db.url, pgliteDir: '', migrate: false, log: createLogger('silent') });
    try {
      const em = orm.em.fork();
      await em.begin();
      const [{ pid }] = await em.execute<{ pid: number }[]>('select pg_backend_pid() as pid');
      const [activity] = await db.query<{ query: string; state: string }>('select query, state from pg_stat_activity where pid = $1', [pid]);
      await em.rollback();
      expect(activity).toEqual({ query: 'begin;select pg_backend_pid() as pid', state: 'idle in transaction' });
    } finally {
      await orm.close(true);
    }
  });
});
