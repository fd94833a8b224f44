/** The store benchmark's settings, read from the environment, and its usage text. */
import { existsSync } from 'node:fs';
import { numberFromEnv } from '../lib/cli.ts';

export interface StoreSettings {
  /** Seconds per append phase (and per pgbench run). */
  seconds: number;
  /** Unrecorded warm-up before each append phase. */
  warmupMs: number;
  /** Cap on appends per phase. */
  maxMessages: number;
  senders: number;
  /** Messages in the history conversation. */
  historyMessages: number;
  historyCalls: number;
  historyLimit: number;
  keepDb: boolean;
  pgbench: string;
  /** Used as is when set (scratch rows removed at the end); else a fresh database is created and dropped. */
  databaseUrl: string | undefined;
  /** The gateway's own setting, passed through. */
  dbPoolMax: string | undefined;
}

export const TARGET_HISTORY_P99_MS = 5;
export const TARGET_APPEND_RATIO = 0.5;
export const DEFAULT_SERVER = 'postgres://postgres@127.0.0.1:5432';
/** What every appended message says: a short chat question, as the gateway mostly stores. */
export const CONTENT = `How do I add a todo item for tomorrow at 9am? ${'Please keep it short. '.repeat(4)}`;

/** Throws UsageError on a malformed value. */
export function readStoreSettings(env: NodeJS.ProcessEnv): StoreSettings {
  const int = (name: string, def: number, min = 1) => numberFromEnv(env, name, def, { min, integer: true });
  return {
    seconds: int('BENCH_SECONDS', 3),
    warmupMs: int('BENCH_WARMUP_MS', 1000, 0),
    maxMessages: int('BENCH_MAX_MESSAGES', 30_000),
    senders: int('BENCH_SENDERS', 32),
    historyMessages: int('BENCH_HISTORY_MESSAGES', 100_000, 200),
    historyCalls: int('BENCH_HISTORY_CALLS', 2_000),
    historyLimit: 50,
    keepDb: env.BENCH_KEEP_DB === '1',
    pgbench: env.PGBENCH || (existsSync('/usr/bin/pgbench') ? '/usr/bin/pgbench' : 'pgbench'),
    databaseUrl: env.DATABASE_URL || undefined,
    dbPoolMax: env.DB_POOL_MAX,
  };
}

export const HELP = `Usage: npm run bench:store [-- --help]

Benchmarks the conversation store on PostgreSQL, through the gateway's own services, and prints a report (also
written to reports/bench-store-<time>.json):
  (a) append throughput and latency: 1 sender; N senders each in its own conversation; N senders in ONE
      conversation; plus diagnostics (raw pg from Node, appends without a clientMessageId);
  (b) history latency (latest 50, before the middle, after a seq) in a conversation of 100,000 messages,
      against the same two queries over a bare pg connection;
  (c) pgbench running the two statements of an append, N clients, alternated with the service (A B B A).
Targets: history p99 < ${TARGET_HISTORY_P99_MS} ms; append with N senders >= ${TARGET_APPEND_RATIO} x pgbench tps. Exit code 0 whether or not the
targets are met; 1 when something failed (setup, an append, a history call); 2 on a usage error.

Options
  -h, --help                this text

Environment
  DATABASE_URL              database to use as is (scratch rows removed at the end); default: a fresh database
                            chat_bench_<time>_<id> on ${DEFAULT_SERVER}, dropped at the end (also on Ctrl-C)
  BENCH_SECONDS             seconds per append phase and pgbench run (default 3)
  BENCH_WARMUP_MS           unrecorded warm-up before each append phase (default 1000)
  BENCH_MAX_MESSAGES        cap on appends per phase (default 30000)
  BENCH_SENDERS             N, concurrent senders and pgbench clients (default 32)
  BENCH_HISTORY_MESSAGES    messages in the history conversation (default 100000, at least 200)
  BENCH_HISTORY_CALLS       measured calls per history query shape (default 2000)
  DB_POOL_MAX               the gateway's pool size (default 20)
  BENCH_KEEP_DB=1           keep the fresh database
  PGBENCH                   path of pgbench (default /usr/bin/pgbench, else from PATH)

Example
  BENCH_SECONDS=1 BENCH_SENDERS=4 BENCH_HISTORY_MESSAGES=2000 BENCH_HISTORY_CALLS=50 npm run bench:store
`;
