// `npm run retention [-- --dry-run] [-- --days N]`: deletes the conversations idle for RETENTION_DAYS once, and exits.
// The nodes run the same sweep on their own when RETENTION_DAYS is set; this is for a cron job, or a look first.
import { parseArgs } from 'node:util';
import { createRetention } from './conversations/retention.ts';
import { initOrm } from './db/orm.ts';
import { entities } from './entities.ts';
import { createAudit } from './observability/audit.ts';
import { createLogger } from './observability/logger.ts';

const USAGE = `Usage: npm run retention -- [--dry-run] [--days N]

Deletes the conversations with no activity (no message, no rename) for RETENTION_DAYS days, with their messages,
in batches, then exits. One sweep runs at a time across nodes and runs of this command.
  --dry-run   list what would be deleted (how many, and the oldest 100), delete nothing
  --days N    instead of RETENTION_DAYS
Reads DATABASE_URL (unset: the embedded database under PGLITE_DIR), DATABASE_SCHEMA, RETENTION_DAYS,
RETENTION_BATCH (200), AUDIT_LOG and LOG_LEVEL. Open tabs are not told (the nodes' own sweep tells them); they see
the conversation gone on their next list or when they open it.
`;

let args;
try {
  args = parseArgs({
    options: { 'dry-run': { type: 'boolean' }, days: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
} catch (err) {
  process.stderr.write(`retention: ${(err as Error).message}\n(try --help)\n`);
  process.exit(2);
}
if (args.values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const days = Number(args.values.days ?? process.env.RETENTION_DAYS);
if (!Number.isInteger(days) || days < 1) {
  process.stderr.write('retention: give the number of days with --days or RETENTION_DAYS (a whole number, at least 1)\n');
  process.exit(2);
}

const log = createLogger(process.env.LOG_LEVEL || 'info', { job: 'retention' });
const orm = await initOrm({
  entities,
  databaseUrl: process.env.DATABASE_URL || undefined,
  pgliteDir: process.env.PGLITE_DIR || './data',
  schema: process.env.DATABASE_SCHEMA || undefined,
  migrate: false,
  log,
});
try {
  const audit = createAudit({ log, node: 'retention', path: process.env.AUDIT_LOG || undefined });
  const retention = createRetention({ orm, log, audit }, { days, batchSize: Number(process.env.RETENTION_BATCH) || 200 });
  if (args.values['dry-run']) {
    const { total, first } = await retention.preview(100);
    console.log(
      `${total} conversation(s) idle for more than ${days} days would be deleted${total > first.length ? `; the oldest ${first.length}:` : ':'}`,
    );
    for (const c of first) console.log(`  ${c.conversationId}  user ${c.userId}  last active ${c.updatedAt}`);
  } else {
    const { removed, busy } = await retention.sweep();
    console.log(
      busy ? 'another sweep is running; nothing done' : `${removed.length} conversation(s) idle for more than ${days} days deleted`,
    );
  }
} finally {
  await orm.close(true);
}
