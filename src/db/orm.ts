import { MikroORM } from '@mikro-orm/sql';
import pg from 'pg';
import type { Logger } from '../observability/logger.ts';
import { withTimeout } from '../shared/time-bounds.ts';
import { ormConfig, type DatabaseOptions } from './orm-config.ts';
import type { Orm } from './types.ts';

// Arbitrary constant shared by every node: the key of the advisory lock that serialises migrations.
const MIGRATION_LOCK_KEY = 7_346_112_901;

export async function initOrm(options: DatabaseOptions & { migrate: boolean; log: Logger }): Promise<Orm> {
  if (options.migrate && options.databaseUrl) {
    await migrateUnderLock(options, options.log);
  }
  const orm = await MikroORM.init(ormConfig(options));
  if (!options.databaseUrl) await useSchema(orm, options.schema);
  if (options.migrate && !options.databaseUrl) {
    // The embedded database lives in this process only: no other node can race for it.
    await runMigrations(orm, options.log);
  }
  return orm;
}

/**
 * The embedded database is one connection: its search path is set once (PostgreSQL's pool sets it per connection),
 * and the schema made first, since the statements written by hand name tables without one.
 */
async function useSchema(orm: Orm, schema = 'public') {
  const connection = orm.em.getConnection();
  await connection.execute(`create schema if not exists ${quoted(schema)}`);
  await connection.execute(`set search_path to ${quoted(schema)}`);
}

/** A schema name in SQL: it is written into statements, so only a plain identifier is taken. */
function quoted(schema: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`"${schema}" is not a plain lower-case schema name`);
  return `"${schema}"`;
}

async function runMigrations(orm: Orm, log: Logger) {
  const applied = await orm.migrator.up();
  if (applied.length) log.info({ migrations: applied.map((m) => m.name) }, 'migrations applied');
}

/**
 * Nodes that start together must not race: each takes a session-level advisory lock on its own connection,
 * so one runs the migrations and the others wait, then find nothing pending.
 */
async function migrateUnderLock(options: DatabaseOptions, log: Logger) {
  const client = new pg.Client({ connectionString: options.databaseUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(`create schema if not exists ${quoted(options.schema ?? 'public')}`);
    const orm = await MikroORM.init({ ...ormConfig({ ...options, statementTimeoutMs: undefined }), pool: { min: 0, max: 1 } });
    try {
      await runMigrations(orm, log);
    } finally {
      await orm.close();
    }
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
}

/** A cheap round trip, bounded so a dead or hung database answers quickly. */
export async function pingDatabase(orm: Orm, timeoutMs = 1500): Promise<void> {
  await withTimeout(orm.em.fork().execute('select 1'), timeoutMs, () => new Error('database ping timed out'));
}
