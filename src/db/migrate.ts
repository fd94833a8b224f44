// Runs the pending migrations and exits: `node src/db/migrate.ts` (the one-shot job of docker-compose.yml).
// Same lock as start-up, so it is safe beside nodes that migrate on start.
import { createLogger } from '../observability/logger.ts';
import { initOrm } from './orm.ts';

const log = createLogger(process.env.LOG_LEVEL || 'info', { job: 'migrate' });
const orm = await initOrm({
  databaseUrl: process.env.DATABASE_URL || undefined,
  pgliteDir: process.env.PGLITE_DIR || './data',
  migrate: true,
  log,
});
await orm.close(true);
log.info('migrations are up to date');
