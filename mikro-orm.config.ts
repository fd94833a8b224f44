// Config for the MikroORM CLI (`npm run migrate`, `npm run migration:create`).
// DATABASE_URL selects PostgreSQL; without it the embedded PGlite database under PGLITE_DIR (./data) is used.
import { ormConfig } from './src/db/orm-config.ts';
import { entities } from './src/entities.ts';

export default ormConfig({
  entities,
  databaseUrl: process.env.DATABASE_URL || undefined,
  pgliteDir: process.env.PGLITE_DIR || './data',
  schema: process.env.DATABASE_SCHEMA || undefined,
});
