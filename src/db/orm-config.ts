import { defineConfig, type Options } from '@mikro-orm/sql';
import { PgliteDriver } from '@mikro-orm/pglite';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { fileURLToPath } from 'node:url';
import type { Pool } from 'pg';
import { namePreparedStatements } from './prepared.ts';

const migrationsPath = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface DatabaseOptions {
  /** The entities of every feature (src/entities.ts): the database layer knows none of them by name. */
  entities: Options['entities'];
  /** PostgreSQL connection string; when absent the embedded PGlite database is used. */
  databaseUrl?: string;
  /** Directory of the embedded database (`memory://` keeps it in memory, for tests). */
  pgliteDir: string;
  /** Pool size for PostgreSQL. */
  poolMax?: number;
  /**
   * The PostgreSQL schema of every table, index and the migrations' own table (default `public`), so the gateway
   * can share a database with the application it serves (which may have a `users` table of its own).
   */
  schema?: string;
  /**
   * Bounds on every statement of the serving pool (not of migrations, which may rightly take long): PostgreSQL
   * cancels a statement that runs, or waits for a lock, longer than this, and the driver gives up on an answer
   * that does not come a little after that (a server that hangs cannot cancel anything).
   */
  statementTimeoutMs?: number;
  debug?: boolean;
}

/** One MikroORM config for both databases: the same entities and migrations serve PostgreSQL and PGlite. */
export function ormConfig(options: DatabaseOptions): Options {
  const schema = options.schema ?? 'public';
  const common = {
    entities: options.entities,
    schema,
    extensions: [Migrator],
    debug: options.debug ?? false,
    // Entities are defined with defineEntity; nothing to discover by reflection.
    discovery: { warnWhenNoEntities: true },
    migrations: {
      path: migrationsPath,
      pathTs: migrationsPath,
      // Fixed name so PostgreSQL and PGlite share one snapshot file.
      snapshotName: '.snapshot-chat',
      // The snapshot belongs to migration:create; migrating must not rewrite a committed file (and PostgreSQL
      // and PGlite introspect partial indexes differently).
      snapshotOnMigrate: false,
      transactional: true,
      allOrNothing: true,
      emit: 'ts' as const,
      silent: true,
    },
    // The service layer always works on forks; a global context would leak state between events.
    allowGlobalContext: false,
  };
  if (options.databaseUrl) {
    return defineConfig({
      ...common,
      driver: PostgreSqlDriver as unknown as Options['driver'],
      clientUrl: options.databaseUrl,
      pool: { min: 2, max: options.poolMax ?? 20, idleTimeoutMillis: 60_000 },
      // Prepared statements go out under their names (prepared.ts).
      driverOptions: {
        connectionTimeoutMillis: 3_000,
        // A peer that vanished without closing (a host down, a cut network) is noticed by TCP keep-alive.
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
        // The statements written by hand (the append batch, history, replies) name tables without a schema.
        options: `-c search_path=${schema}`,
        ...statementBounds(options.statementTimeoutMs),
        onPoolCreated: (pool: Pool) => namePreparedStatements(pool),
      },
    });
  }
  return defineConfig({
    ...common,
    driver: PgliteDriver as unknown as Options['driver'],
    dbName: options.pgliteDir,
  });
}

function statementBounds(timeoutMs: number | undefined) {
  if (!timeoutMs) return {};
  return {
    statement_timeout: timeoutMs,
    lock_timeout: timeoutMs,
    idle_in_transaction_session_timeout: timeoutMs * 2,
    query_timeout: timeoutMs + 2_000,
  };
}
