// Runs the pending migrations and exits: `node src/migrate.ts` (the one-shot job of docker-compose.yml).
// Same lock as start-up, so it is safe beside nodes that migrate on start.
import { initOrm } from './db/orm.ts';
import { entities } from './entities.ts';
import { createLogger } from './observability/logger.ts';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(`Usage: node src/migrate.ts

Applies the pending database migrations, then exits. Reads DATABASE_URL (PostgreSQL; unset: the embedded
database under PGLITE_DIR, default ./data) and LOG_LEVEL. Safe to run while nodes start: migrations run under
a PostgreSQL advisory lock.`);
  process.exit(0);
}

const log = createLogger(process.env.LOG_LEVEL || 'info', { job: 'migrate' });
const orm = await initOrm({
  entities,
  databaseUrl: process.env.DATABASE_URL || undefined,
  pgliteDir: process.env.PGLITE_DIR || './data',
  schema: process.env.DATABASE_SCHEMA || undefined,
  migrate: true,
  log,
});
await orm.close(true);
log.info('migrations are up to date');
