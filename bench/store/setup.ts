/**
 * Setting up and tearing down the store benchmark: a fresh database (or DATABASE_URL as given), a bare pg
 * connection, a scratch directory and the gateway itself. Each piece registers its own undoing as it is made, so a
 * failure or a Ctrl-C at any point undoes exactly what exists.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { createGateway } from '../../src/gateway.ts';
import type { Cleanup } from '../lib/cleanup.ts';
import { query, type RunIds, type StoreContext } from './context.ts';
import { DEFAULT_SERVER, type StoreSettings } from './options.ts';
import { gitState, say, type StoreReport } from './report.ts';

/** A hanging shutdown must not keep the scratch database alive (DROP ... WITH (FORCE) ends its connections). */
const GATEWAY_CLOSE_BOUND_MS = 15_000;

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

function describeUrl(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

/** DATABASE_URL as given, or a fresh database whose drop is registered at once. */
async function openDatabase(settings: StoreSettings, ids: RunIds, cleanup: Cleanup): Promise<{ url: string; fresh: boolean }> {
  if (settings.databaseUrl) return { url: settings.databaseUrl, fresh: false };
  const dbName = `chat_bench_${ids.stamp.replace('-', '_')}_${ids.runId}`;
  for (const maintenance of ['postgres', 'test']) {
    const adminUrl = withDatabase(DEFAULT_SERVER, maintenance);
    const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000 });
    try {
      await admin.connect();
    } catch {
      continue;
    }
    try {
      await admin.query(`create database "${dbName}"`);
      cleanup.add(`drop database ${dbName}`, () => dropDatabase(adminUrl, dbName, settings.keepDb));
      return { url: withDatabase(DEFAULT_SERVER, dbName), fresh: true };
    } finally {
      await admin.end();
    }
  }
  throw new Error(`cannot connect to ${DEFAULT_SERVER} (databases postgres, test) to create the bench database; set DATABASE_URL`);
}

async function dropDatabase(adminUrl: string, dbName: string, keep: boolean): Promise<void> {
  if (keep) {
    say(`kept database ${dbName} (BENCH_KEEP_DB=1)`);
    return;
  }
  const admin = new pg.Client({ connectionString: adminUrl });
  try {
    await admin.connect();
    await admin.query(`drop database if exists "${dbName}" with (force)`);
  } catch (e) {
    say(`cleanup: could not drop database ${dbName}: ${String(e)}`);
  } finally {
    await admin.end().catch(() => undefined);
  }
}

/** Everything the phases need, announced as it comes up; the teardown of each piece is in `cleanup`. */
export async function setUp(settings: StoreSettings, ids: RunIds, report: StoreReport, cleanup: Cleanup): Promise<StoreContext> {
  const database = await openDatabase(settings, ids, cleanup);
  report.database =
    describeUrl(database.url) + (database.fresh ? ' (fresh, dropped at the end)' : ' (DATABASE_URL, scratch rows removed at the end)');
  say(`database: ${report.database}`);
  report.git = await gitState();
  say(
    `code: ${report.git.commit || '?'}${report.git.srcDirty ? ` + uncommitted: ${report.git.changes.map((l) => l.slice(3)).join(', ')}` : ''}`,
  );

  const sql = new pg.Client({ connectionString: database.url });
  await sql.connect();
  cleanup.add('pg connection', async () => {
    await sql.end().catch(() => undefined);
  });
  if (!database.fresh) {
    // DATABASE_URL given: remove only our scratch users; conversations and messages go by ON DELETE CASCADE.
    cleanup.add('scratch rows', async () => {
      await sql.query(`delete from users where id like $1`, [`${ids.userPrefix}%`]).catch((e) => say(`cleanup: ${String(e)}`));
    });
  }
  const tmp = await mkdtemp(join(tmpdir(), 'bench-store-'));
  cleanup.add('scratch directory', () => rm(tmp, { recursive: true, force: true }));

  const config = loadConfig({
    DATABASE_URL: database.url,
    JWT_SECRET: randomBytes(32).toString('hex'),
    ASSISTANT: 'none',
    LOG_LEVEL: 'silent',
    MIGRATE_ON_START: 'true',
    NODE_ID: `bench-${ids.runId}`,
    PORT: '0',
    DB_POOL_MAX: settings.dbPoolMax,
  });
  const gateway = await createGateway(config);
  cleanup.add('gateway', () => closeGateway(() => gateway.close(), report));
  report.settings.dbPoolMax = config.dbPoolMax;
  const [pgv] = await query<{ v: string }>(sql, `select current_setting('server_version') as v`);
  report.postgres = pgv!.v;
  say(`gateway: createGateway(loadConfig(...)), migrations applied, DB pool max ${config.dbPoolMax}; PostgreSQL ${report.postgres}`);
  say(
    `each append phase: ${settings.seconds} s (cap ${settings.maxMessages} messages) after a ${settings.warmupMs} ms warm-up; every append carries a clientMessageId, as on the socket`,
  );
  return { settings, ids, databaseUrl: database.url, gateway, sql, tmp, report, cleanup };
}

async function closeGateway(close: () => Promise<void>, report: StoreReport): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([
    close().then(
      () => true,
      (e) => {
        say(`cleanup: gateway.close() failed: ${String(e)}`);
        return true;
      },
    ),
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), GATEWAY_CLOSE_BOUND_MS))),
  ]);
  clearTimeout(timer);
  if (!closed) {
    say(`cleanup: gateway.close() did not finish within ${GATEWAY_CLOSE_BOUND_MS / 1000} s; going on`);
    report.errors.push(`gateway.close() did not finish within ${GATEWAY_CLOSE_BOUND_MS / 1000} s`);
    process.exitCode = 1;
  }
}
