import type { EntityManager, MikroORM } from '@mikro-orm/sql';
import type { Audit } from '../observability/audit.ts';
import type { Logger } from '../observability/logger.ts';

export type Orm = MikroORM;
export type Em = EntityManager;

/** What every feature service is built from: the ORM (each operation forks its own entity manager), the log and the audit trail. */
export interface ServiceDeps {
  orm: Orm;
  log: Logger;
  audit: Audit;
}
