/**
 * Store benchmark (`npm run bench:store`): a printed report, not a test. Exit code 0 whether or not the
 * targets are met; non-zero only when something failed (setup, an append or a history call).
 *
 *  (a) append throughput and latency through services.messages.append: 1 sender; 32 senders each in its own
 *      conversation; 32 senders in ONE conversation.
 *  (b) history latency (latest 50, before the middle, after a seq) in a conversation of 100,000 messages,
 *      filled with one bulk SQL insert before the append phases (so those run on a table of realistic size);
 *      plus the same two queries over a bare pg client as a floor.
 *  (c) pgbench running the two statements an append runs (UPDATE conversations ... RETURNING last_seq;
 *      INSERT INTO messages ...), 32 clients each in its own conversation, same duration, alternated with
 *      the 32-sender service run (A B B A) because the machine is noisy.
 *
 * Targets (from the issue): history p99 < 5 ms at 100,000 messages; append throughput with 32 senders
 * >= 0.5 x pgbench tps.
 *
 * Environment: DATABASE_URL (used as is, scratch rows removed at the end; default: a fresh database
 * chat_bench_<ts> on postgres://postgres@127.0.0.1:5432, dropped at the end), BENCH_SECONDS (3),
 * BENCH_WARMUP_MS (unrecorded warm-up before each append phase, 1000), BENCH_MAX_MESSAGES (cap per append phase, 30000), BENCH_SENDERS (32), BENCH_HISTORY_MESSAGES (100000),
 * BENCH_HISTORY_CALLS (2000 per query shape), DB_POOL_MAX (the gateway's own setting, default 20),
 * BENCH_KEEP_DB=1 (keep the fresh database), PGBENCH (path of pgbench, default from PATH or /usr/bin/pgbench).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, hostname, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { loadConfig } from '../src/config.ts';
import { createGateway, type Gateway } from '../src/gateway.ts';
import { LatencyRecorder, fmtGc, fmtMs, fmtSummary, watchGc, type GcSummary, type LatencySummary } from './lib/latency.ts';

const execFileAsync = promisify(execFile);

// ---------------------------------------------------------------------------------------------------
// Settings

function intEnv(name: string, def: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${raw}`);
  return n;
}

const SECONDS = intEnv('BENCH_SECONDS', 3);
const WARMUP_MS = intEnv('BENCH_WARMUP_MS', 1000, 0);
const MAX_MESSAGES = intEnv('BENCH_MAX_MESSAGES', 30_000);
const SENDERS = intEnv('BENCH_SENDERS', 32);
const HISTORY_MESSAGES = intEnv('BENCH_HISTORY_MESSAGES', 100_000, 200);
const HISTORY_CALLS = intEnv('BENCH_HISTORY_CALLS', 2_000);
const HISTORY_LIMIT = 50;
const KEEP_DB = process.env.BENCH_KEEP_DB === '1';
const TARGET_HISTORY_P99_MS = 5;
const TARGET_APPEND_RATIO = 0.5;
const PGBENCH = process.env.PGBENCH || (existsSync('/usr/bin/pgbench') ? '/usr/bin/pgbench' : 'pgbench');
const DEFAULT_SERVER = 'postgres://postgres@127.0.0.1:5432';

const runId = randomBytes(4).toString('hex'); // also the first 8 hex digits of the pgbench conversations' uuids
const startedAt = new Date();
const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
const userPrefix = `bench-${runId}-`;
const CONTENT = 'How do I add a todo item for tomorrow at 9am? ' + 'Please keep it short. '.repeat(4);

// ---------------------------------------------------------------------------------------------------
// Small helpers

const say = (line = '') => process.stdout.write(line + '\n');
const rate = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = '/' + db;
  return u.toString();
}

function describeUrl(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

async function query<R extends pg.QueryResultRow = Record<string, unknown>>(client: pg.Client, sql: string, params: unknown[] = []) {
  return (await client.query<R>(sql, params)).rows;
}

// ---------------------------------------------------------------------------------------------------
// Report shapes

interface AppendPhase {
  name: string;
  senders: number;
  conversations: number;
  seconds: number;
  appended: number;
  errors: number;
  messagesPerSecond: number;
  latency: LatencySummary;
  /** CPU of this process (gateway services + the senders) during the phase. */
  nodeCpu: { percentOfOneCore: number; msPerMessage: number };
  gc: GcSummary;
  integrity?: { ok: boolean; detail: string };
}

interface PgbenchRun {
  name: string;
  clients: number;
  seconds: number;
  tps: number;
  transactions: number;
  failed: number;
  latencyAvgMs: number | null;
}

interface HistoryShape {
  name: string;
  query: { limit: number; before?: number; after?: number };
  service: LatencySummary;
  rawPg: LatencySummary;
}

const report = {
  bench: 'store',
  startedAt: startedAt.toISOString(),
  finishedAt: '',
  host: hostname(),
  cpus: cpus().length,
  /** 1/5/15-minute load averages at the start and the end: a busy machine explains odd figures. */
  loadAverage: { start: loadavg().map((l) => round(l)), end: [] as number[] },
  node: process.version,
  database: '',
  postgres: '',
  git: { commit: '', srcDirty: false, changes: [] as string[] },
  settings: {
    seconds: SECONDS,
    warmupMs: WARMUP_MS,
    maxMessagesPerPhase: MAX_MESSAGES,
    senders: SENDERS,
    historyMessages: HISTORY_MESSAGES,
    historyCallsPerShape: HISTORY_CALLS,
    historyLimit: HISTORY_LIMIT,
    dbPoolMax: 0,
    appendUsesClientMessageId: true,
  },
  append: [] as AppendPhase[],
  pgbench: [] as PgbenchRun[],
  history: {
    fillSeconds: 0,
    plan: [] as string[],
    gc: { pauses: 0, totalMs: 0, maxMs: 0, byKind: {} } as GcSummary,
    shapes: [] as HistoryShape[],
  },
  targets: [] as { name: string; target: string; value: string; pass: boolean }[],
  errors: [] as string[],
};

// ---------------------------------------------------------------------------------------------------
// Lifecycle: fresh database (or DATABASE_URL as given), gateway, cleanup

let createdDb: string | undefined;
let adminUrl: string | undefined;
let gateway: Gateway | undefined;
let sql: pg.Client | undefined;
let tmp: string | undefined;

async function openDatabase(): Promise<string> {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  const dbName = `chat_bench_${stamp.replace('-', '_')}_${runId}`;
  for (const maintenance of ['postgres', 'test']) {
    const candidate = withDatabase(DEFAULT_SERVER, maintenance);
    const admin = new pg.Client({ connectionString: candidate, connectionTimeoutMillis: 5_000 });
    try {
      await admin.connect();
    } catch {
      continue;
    }
    try {
      await admin.query(`create database "${dbName}"`);
      adminUrl = candidate;
      createdDb = dbName;
      return withDatabase(DEFAULT_SERVER, dbName);
    } finally {
      await admin.end();
    }
  }
  throw new Error(`cannot connect to ${DEFAULT_SERVER} (databases postgres, test) to create the bench database; set DATABASE_URL`);
}

let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  if (gateway) {
    // Bounded: a hanging shutdown must not keep the scratch database alive (DROP ... WITH (FORCE) ends its connections).
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      gateway.close().then(
        () => true,
        (e) => (say(`cleanup: gateway.close() failed: ${String(e)}`), true),
      ),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 15_000))),
    ]);
    clearTimeout(timer);
    if (!closed) {
      say('cleanup: gateway.close() did not finish within 15 s; going on');
      report.errors.push('gateway.close() did not finish within 15 s');
      process.exitCode = 1;
    }
  }
  if (sql && !createdDb) {
    // DATABASE_URL given: remove only our scratch users; conversations and messages go by ON DELETE CASCADE.
    await sql.query(`delete from users where id like $1`, [`${userPrefix}%`]).catch((e) => say(`cleanup: ${String(e)}`));
  }
  if (sql) await sql.end().catch(() => undefined);
  if (tmp) await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  if (createdDb && adminUrl) {
    if (KEEP_DB) {
      say(`kept database ${createdDb} (BENCH_KEEP_DB=1)`);
      return;
    }
    const admin = new pg.Client({ connectionString: adminUrl });
    try {
      await admin.connect();
      await admin.query(`drop database if exists "${createdDb}" with (force)`);
    } catch (e) {
      say(`cleanup: could not drop database ${createdDb}: ${String(e)}`);
    } finally {
      await admin.end().catch(() => undefined);
    }
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`\n${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------------
// (a) Appends through the service

interface Sender {
  userId: string;
  conversationId: string;
}

async function createConversation(userId: string, title: string): Promise<string> {
  const outcome = await gateway!.services.conversations.create(userId, { title });
  return outcome.data.conversation.id;
}

type SendFn = (sender: Sender, clientMessageId: string) => Promise<unknown>;

/** The gateway's own path: services.messages.append (what message:send and POST .../messages call). */
const serviceSend: SendFn = (s, clientMessageId) =>
  gateway!.services.messages.append(s.userId, { conversationId: s.conversationId, content: CONTENT, clientMessageId });

/** The same path without a clientMessageId (REST without Idempotency-Key): no duplicate pre-check query. */
const serviceSendNoId: SendFn = (s) => gateway!.services.messages.append(s.userId, { conversationId: s.conversationId, content: CONTENT });

/**
 * Diagnostic floor for a Node implementation: the two statements of an append in one transaction over a
 * plain pg pool of the gateway's size (no ORM, no pre-check), bound parameters as the ORM sends them.
 */
function rawPgSend(pool: pg.Pool): SendFn {
  return async (s, clientMessageId) => {
    const client = await pool.connect();
    try {
      await client.query('begin');
      const now = new Date();
      const { rows } = await client.query<{ last_seq: string }>(
        'update conversations set last_seq = last_seq + 1, updated_at = $1 where id = $2 and user_id = $3 returning *',
        [now, s.conversationId, s.userId],
      );
      if (rows.length !== 1) throw new Error('conversation not found');
      await client.query(
        `insert into messages (id, conversation_id, user_id, seq, role, status, content, metadata, client_message_id, created_at, updated_at)
         values ($1, $2, $3, $4, 'user', 'complete', $5, null, $6, $7, $7)`,
        [uuidv7(), s.conversationId, s.userId, rows[0]!.last_seq, CONTENT, clientMessageId, now],
      );
      await client.query('commit');
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  };
}

async function appendPhase(
  name: string,
  senders: Sender[],
  sendFn: SendFn,
  opts: { warmupPerSender?: number; checkConversation?: string } = {},
): Promise<AppendPhase> {
  let serial = 0;
  const send = (s: Sender, i: number) => sendFn(s, `${runId}-${name}-${i}-${serial++}`);

  // Warm-up (not recorded): fills the pool, JITs the path, lets batches settle. At least a few appends per
  // sender, then until WARMUP_MS has passed.
  const warmupEnd = performance.now() + WARMUP_MS;
  await Promise.all(
    senders.map(async (s, i) => {
      for (let k = 0; k < (opts.warmupPerSender ?? 5) || performance.now() < warmupEnd; k++) await send(s, i);
    }),
  );

  const latency = new LatencyRecorder();
  let started = 0;
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const gc = watchGc();
  const t0 = performance.now();
  const deadline = t0 + SECONDS * 1000;
  await Promise.all(
    senders.map(async (s, i) => {
      while (performance.now() < deadline && started < MAX_MESSAGES) {
        started++;
        const t = performance.now();
        try {
          await send(s, i);
          latency.record(performance.now() - t);
        } catch (err) {
          errors++;
          if (report.errors.length < 10) report.errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const gcSummary = gc.stop();
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const phase: AppendPhase = {
    name,
    senders: senders.length,
    conversations: new Set(senders.map((s) => s.conversationId)).size,
    seconds: round(seconds, 3),
    appended: latency.count,
    errors,
    messagesPerSecond: round(latency.count / seconds, 1),
    latency: latency.summary(),
    nodeCpu: {
      percentOfOneCore: round((cpuMs / (seconds * 1000)) * 100, 0),
      msPerMessage: latency.count ? round(cpuMs / latency.count, 3) : 0,
    },
    gc: gcSummary,
  };
  if (opts.checkConversation) phase.integrity = await checkSeqs(opts.checkConversation);
  say(`  ${name.padEnd(38)} ${rate(phase.messagesPerSecond).padStart(6)} msg/s   ${fmtSummary(phase.latency)}${errors ? `   ERRORS ${errors}` : ''}`);
  say(`  ${''.padEnd(38)} this process: ${phase.nodeCpu.percentOfOneCore}% of a core, ${phase.nodeCpu.msPerMessage} ms CPU per message; ${fmtGc(phase.gc)}`);
  if (phase.integrity) say(`  ${''.padEnd(38)} seq check: ${phase.integrity.ok ? 'ok' : 'BROKEN'} (${phase.integrity.detail})`);
  return phase;
}

/** seq must be 1..n with no gap and no repeat, and last_seq must equal n. */
async function checkSeqs(conversationId: string): Promise<{ ok: boolean; detail: string }> {
  const [row] = await query<{ n: string; distinct_seqs: string; min: string; max: string; last_seq: string }>(
    sql!,
    `select count(*) as n, count(distinct m.seq) as distinct_seqs, min(m.seq) as min, max(m.seq) as max,
            (select last_seq from conversations where id = $1) as last_seq
       from messages m where m.conversation_id = $1`,
    [conversationId],
  );
  const n = Number(row!.n);
  const ok = n === Number(row!.distinct_seqs) && Number(row!.min) === 1 && Number(row!.max) === n && Number(row!.last_seq) === n;
  return { ok, detail: `${n} messages, seq ${row!.min}..${row!.max}, last_seq ${row!.last_seq}` };
}

// ---------------------------------------------------------------------------------------------------
// (c) pgbench: the same two statements per transaction, 32 clients, one conversation each

async function preparePgbench(clients: number): Promise<{ script: string; conversationIds: string[] }> {
  const userId = `${userPrefix}pgbench`;
  const idOf = (n: number) => `${runId}-0000-7000-8000-${String(n).padStart(12, '0')}`;
  const conversationIds = Array.from({ length: clients }, (_, n) => idOf(n));
  await sql!.query(`insert into users (id, created_at) values ($1, now())`, [userId]);
  await sql!.query(
    `insert into conversations (id, user_id, title, last_seq, created_at, updated_at)
     select ('${runId}-0000-7000-8000-' || lpad(g::text, 12, '0'))::uuid, $1, 'pgbench ' || g, 0, now(), now()
       from generate_series(0, $2::int - 1) g`,
    [userId, clients],
  );
  // :client_id is pgbench's 0-based client number: each client appends into its own conversation, as each
  // service sender does. The statements are those of a one-message-per-transaction append (the issue's
  // baseline), whatever the service does internally.
  const conv = `('${runId}-0000-7000-8000-' || lpad(:client_id::text, 12, '0'))::uuid`;
  const script = [
    'BEGIN;',
    `UPDATE conversations SET last_seq = last_seq + 1, updated_at = now() WHERE id = ${conv} AND user_id = '${userId}' RETURNING last_seq AS seq \\gset`,
    `INSERT INTO messages (id, conversation_id, user_id, seq, role, status, content, metadata, client_message_id, created_at, updated_at) ` +
      `VALUES (gen_random_uuid(), ${conv}, '${userId}', :seq, 'user', 'complete', '${CONTENT}', NULL, gen_random_uuid()::text, now(), now());`,
    'END;',
    '',
  ].join('\n');
  const file = join(tmp!, 'append.pgbench');
  await writeFile(file, script);
  return { script: file, conversationIds };
}

async function runPgbench(name: string, databaseUrl: string, scriptFile: string, clients: number): Promise<PgbenchRun> {
  const u = new URL(databaseUrl);
  const args = [
    '-n', '-c', String(clients), '-j', String(Math.min(2, clients)), '-T', String(SECONDS), '-f', scriptFile,
    '-h', u.hostname || '127.0.0.1', '-p', u.port || '5432', '-U', decodeURIComponent(u.username || 'postgres'),
    decodeURIComponent(u.pathname.slice(1)),
  ];
  const env = { ...process.env, ...(u.password ? { PGPASSWORD: decodeURIComponent(u.password) } : {}) };
  const { stdout } = await execFileAsync(PGBENCH, args, { env, timeout: (SECONDS + 60) * 1000, maxBuffer: 1 << 20 });
  const num = (re: RegExp) => {
    const m = re.exec(stdout);
    return m ? Number(m[1]) : null;
  };
  const tps = num(/^tps = ([\d.]+)/m);
  if (tps === null) throw new Error(`pgbench printed no tps:\n${stdout}`);
  const run: PgbenchRun = {
    name,
    clients,
    seconds: SECONDS,
    tps: round(tps, 1),
    transactions: num(/number of transactions actually processed: (\d+)/) ?? 0,
    failed: num(/number of failed transactions: (\d+)/) ?? 0,
    latencyAvgMs: num(/latency average = ([\d.]+) ms/),
  };
  say(`  ${name.padEnd(38)} ${rate(run.tps).padStart(6)} tps     avg latency ${run.latencyAvgMs ?? '?'} ms (${run.transactions} transactions, ${run.failed} failed)`);
  if (run.failed) report.errors.push(`${name}: ${run.failed} failed pgbench transactions`);
  return run;
}

// ---------------------------------------------------------------------------------------------------
// (b) History in a conversation of HISTORY_MESSAGES messages

async function fillHistoryConversation(): Promise<{ userId: string; conversationId: string }> {
  const userId = `${userPrefix}history`;
  const conversationId = await createConversation(userId, 'history bench');
  const t0 = performance.now();
  await sql!.query('begin');
  await sql!.query(
    `insert into messages (id, conversation_id, user_id, seq, role, status, content, metadata, client_message_id, created_at, updated_at)
     select gen_random_uuid(), $1, $2, g,
            case when g % 2 = 1 then 'user' else 'assistant' end, 'complete',
            'message ' || g || ': ' || repeat('lorem ipsum dolor sit amet ', 1 + g % 8),
            case when g % 2 = 0 then jsonb_build_object('model', 'echo', 'processingTimeMs', g % 997) end,
            case when g % 2 = 1 then 'hist-' || g end,
            now() - make_interval(secs => $3::int - g), now() - make_interval(secs => $3::int - g)
       from generate_series(1, $3::int) g`,
    [conversationId, userId, HISTORY_MESSAGES],
  );
  await sql!.query(`update conversations set last_seq = $2, updated_at = now() where id = $1`, [conversationId, HISTORY_MESSAGES]);
  await sql!.query('commit');
  // Settle statistics and the visibility map so autovacuum does not wake up in the middle of the measurement.
  await sql!.query('vacuum (analyze) messages');
  await sql!.query('analyze conversations');
  report.history.fillSeconds = round((performance.now() - t0) / 1000, 2);
  say(`history conversation: filled ${HISTORY_MESSAGES.toLocaleString('en')} messages with one insert ... select generate_series in ${report.history.fillSeconds} s (incl. vacuum analyze)`);
  return { userId, conversationId };
}

async function historyBench(userId: string, conversationId: string) {
  const { messages } = gateway!.services;
  const middle = Math.floor(HISTORY_MESSAGES / 2);
  const shapes: { name: string; query: { limit: number; before?: number; after?: number }; first: number }[] = [
    { name: `latest ${HISTORY_LIMIT}`, query: { limit: HISTORY_LIMIT }, first: HISTORY_MESSAGES - HISTORY_LIMIT + 1 },
    { name: `before ${middle}`, query: { limit: HISTORY_LIMIT, before: middle }, first: middle - HISTORY_LIMIT },
    { name: `after ${Math.floor(HISTORY_MESSAGES * 0.75)}`, query: { limit: HISTORY_LIMIT, after: Math.floor(HISTORY_MESSAGES * 0.75) }, first: Math.floor(HISTORY_MESSAGES * 0.75) + 1 },
  ];

  // Correctness first: each shape answers 50 messages in ascending seq, with more in the direction of travel.
  for (const s of shapes) {
    const page = await messages.history(userId, conversationId, s.query);
    const seqs = page.messages.map((m) => m.seq);
    const expected = Array.from({ length: HISTORY_LIMIT }, (_, i) => s.first + i);
    if (seqs.join() !== expected.join() || !page.hasMore) {
      throw new Error(`history ${s.name} answered seq ${seqs[0]}..${seqs.at(-1)} (${seqs.length}), hasMore ${page.hasMore}; expected ${expected[0]}..${expected.at(-1)}, hasMore true`);
    }
  }

  // The plan of the messages query (the shape `before` takes).
  const plan = await query<{ 'QUERY PLAN': string }>(
    sql!,
    `explain (analyze, buffers, costs off) select * from messages where conversation_id = $1 and user_id = $2 and seq < $3 order by seq desc limit $4`,
    [conversationId, userId, middle, HISTORY_LIMIT + 1],
  );
  report.history.plan = plan.map((r) => r['QUERY PLAN']);
  say(`  plan (before): ${report.history.plan.filter((l) => /Scan|Limit|Execution/.test(l)).map((l) => l.trim()).join(' | ')}`);

  // The same two queries the service runs, over one bare pg connection with bound parameters: the floor.
  const raw = async (q: { limit: number; before?: number; after?: number }) => {
    await sql!.query('select * from conversations where id = $1 and user_id = $2 limit 1', [conversationId, userId]);
    if (q.after !== undefined) {
      await sql!.query('select * from messages where conversation_id = $1 and user_id = $2 and seq > $3 order by seq asc limit $4', [conversationId, userId, q.after, q.limit + 1]);
    } else if (q.before !== undefined) {
      await sql!.query('select * from messages where conversation_id = $1 and user_id = $2 and seq < $3 order by seq desc limit $4', [conversationId, userId, q.before, q.limit + 1]);
    } else {
      await sql!.query('select * from messages where conversation_id = $1 and user_id = $2 order by seq desc limit $3', [conversationId, userId, q.limit + 1]);
    }
  };

  const service = shapes.map(() => new LatencyRecorder());
  const rawPg = shapes.map(() => new LatencyRecorder());
  const warmup = 100;
  let gc: { stop: () => GcSummary } | undefined;
  // One call at a time, shapes interleaved round-robin (and service/raw alternated) so noise spreads evenly.
  for (let i = 0; i < warmup + HISTORY_CALLS; i++) {
    if (i === warmup) gc = watchGc();
    for (let k = 0; k < shapes.length; k++) {
      const s = shapes[k]!;
      const order = (i + k) % 2 === 0 ? ['service', 'raw'] : ['raw', 'service'];
      for (const which of order) {
        const t = performance.now();
        try {
          if (which === 'service') await messages.history(userId, conversationId, s.query);
          else await raw(s.query);
        } catch (err) {
          report.errors.push(`history ${s.name} (${which}): ${err instanceof Error ? err.message : String(err)}`);
          throw err;
        }
        if (i >= warmup) (which === 'service' ? service : rawPg)[k]!.record(performance.now() - t);
      }
    }
  }
  report.history.gc = gc!.stop();
  say(`  during the ${HISTORY_CALLS * shapes.length * 2} measured calls: ${fmtGc(report.history.gc)}`);
  for (let k = 0; k < shapes.length; k++) {
    const shape: HistoryShape = { name: shapes[k]!.name, query: shapes[k]!.query, service: service[k]!.summary(), rawPg: rawPg[k]!.summary() };
    report.history.shapes.push(shape);
    say(`  ${('service ' + shape.name).padEnd(34)} ${fmtSummary(shape.service)}`);
    say(`  ${('  raw pg, same 2 queries').padEnd(34)} ${fmtSummary(shape.rawPg)}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Main

/** Which code was measured: the commit, and whether src/ had uncommitted changes. */
async function gitState(): Promise<{ commit: string; srcDirty: boolean; changes: string[] }> {
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  try {
    const head = await execFileAsync('git', ['rev-parse', '--short', 'HEAD'], { cwd });
    const status = await execFileAsync('git', ['status', '--porcelain', '--', 'src', 'migrations'], { cwd });
    const changes = status.stdout.split('\n').filter(Boolean);
    return { commit: head.stdout.trim(), srcDirty: changes.length > 0, changes };
  } catch {
    return { commit: '', srcDirty: false, changes: [] };
  }
}

async function main(): Promise<void> {
  const wall = performance.now();
  say(`bench:store  run ${runId}  ${startedAt.toISOString()}  node ${process.version}  ${cpus().length} cpus  load ${report.loadAverage.start.join(' ')}`);
  const databaseUrl = await openDatabase();
  report.database = describeUrl(databaseUrl) + (createdDb ? ' (fresh, dropped at the end)' : ' (DATABASE_URL, scratch rows removed at the end)');
  say(`database: ${report.database}`);
  report.git = await gitState();
  say(`code: ${report.git.commit || '?'}${report.git.srcDirty ? ` + uncommitted: ${report.git.changes.map((l) => l.slice(3)).join(', ')}` : ''}`);

  sql = new pg.Client({ connectionString: databaseUrl });
  await sql.connect();
  tmp = await mkdtemp(join(tmpdir(), 'bench-store-'));

  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    JWT_SECRET: randomBytes(32).toString('hex'),
    ASSISTANT: 'none',
    LOG_LEVEL: 'silent',
    MIGRATE_ON_START: 'true',
    NODE_ID: `bench-${runId}`,
    PORT: '0',
    DB_POOL_MAX: process.env.DB_POOL_MAX,
  });
  gateway = await createGateway(config);
  report.settings.dbPoolMax = config.dbPoolMax;
  const [pgv] = await query<{ v: string }>(sql, `select current_setting('server_version') as v`);
  report.postgres = pgv!.v;
  say(`gateway: createGateway(loadConfig(...)), migrations applied, DB pool max ${config.dbPoolMax}; PostgreSQL ${report.postgres}`);
  say(`each append phase: ${SECONDS} s (cap ${MAX_MESSAGES} messages) after a ${WARMUP_MS} ms warm-up; every append carries a clientMessageId, as on the socket`);

  // Scratch conversations.
  const one: Sender = { userId: `${userPrefix}solo`, conversationId: '' };
  one.conversationId = await createConversation(one.userId, 'solo');
  const own: Sender[] = [];
  for (let i = 0; i < SENDERS; i++) {
    const userId = `${userPrefix}u${i}`;
    own.push({ userId, conversationId: await createConversation(userId, `sender ${i}`) });
  }
  const sharedUser = `${userPrefix}shared`;
  const sharedConversation = await createConversation(sharedUser, 'shared');
  const shared: Sender[] = Array.from({ length: SENDERS }, () => ({ userId: sharedUser, conversationId: sharedConversation }));
  const pgb = await preparePgbench(SENDERS);

  // The 100,000-message conversation goes in first: the append phases then run against a table of realistic
  // size (on a near-empty table the planner picks other plans, e.g. the batcher's idempotency lookup
  // becomes a seq scan + hash join, and the first phases would be measured on a different database).
  say();
  const hist = await fillHistoryConversation();

  say();
  say('(a)+(c) appends: service vs pgbench, alternated A B B A');
  report.append.push(await appendPhase('service, 1 sender', [one], serviceSend, { warmupPerSender: 50, checkConversation: one.conversationId }));
  const a1 = await appendPhase(`service, ${SENDERS} senders, own conv [A1]`, own, serviceSend, { checkConversation: own[0]!.conversationId });
  report.append.push(a1);
  const b1 = await runPgbench(`pgbench, ${SENDERS} clients [B1]`, databaseUrl, pgb.script, SENDERS);
  report.pgbench.push(b1);
  await sleep(200);
  const b2 = await runPgbench(`pgbench, ${SENDERS} clients [B2]`, databaseUrl, pgb.script, SENDERS);
  report.pgbench.push(b2);
  const a2 = await appendPhase(`service, ${SENDERS} senders, own conv [A2]`, own, serviceSend, { checkConversation: own[0]!.conversationId });
  report.append.push(a2);
  const sharedPhase = await appendPhase(`service, ${SENDERS} senders, ONE conv`, shared, serviceSend, { checkConversation: sharedConversation });
  report.append.push(sharedPhase);

  say('  diagnostics (where the time goes; not part of the targets)');
  const rawPool = new pg.Pool({ connectionString: databaseUrl, max: config.dbPoolMax });
  try {
    report.append.push(await appendPhase(`raw pg from Node, ${SENDERS} senders, own`, own, rawPgSend(rawPool), { checkConversation: own[1]!.conversationId }));
  } finally {
    await rawPool.end();
  }
  report.append.push(await appendPhase(`service no clientMessageId, ${SENDERS}, own`, own, serviceSendNoId, { checkConversation: own[2]!.conversationId }));
  const pgbenchCheck = await checkSeqs(pgb.conversationIds[0]!);
  if (!pgbenchCheck.ok) report.errors.push(`pgbench conversation seq check: ${pgbenchCheck.detail}`);

  say();
  say(`(b) history: one conversation of ${HISTORY_MESSAGES.toLocaleString('en')} messages, limit ${HISTORY_LIMIT}, ${HISTORY_CALLS} calls per shape, one at a time`);
  const t0 = performance.now();
  await sql.query('vacuum (analyze) messages'); // settle after the append phases, so autovacuum stays out of the measurement
  say(`  vacuum analyze after the append phases: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  await historyBench(hist.userId, hist.conversationId);

  // Targets.
  const serviceTput = mean([a1.messagesPerSecond, a2.messagesPerSecond]);
  const pgbenchTps = mean([b1.tps, b2.tps]);
  const ratio = serviceTput / pgbenchTps;
  for (const shape of report.history.shapes) {
    report.targets.push({
      name: `history ${shape.name} p99`,
      target: `< ${TARGET_HISTORY_P99_MS} ms`,
      value: `${fmtMs(shape.service.p99Ms)} ms`,
      pass: shape.service.p99Ms < TARGET_HISTORY_P99_MS,
    });
  }
  report.targets.push({
    name: `append ${SENDERS} senders / pgbench ${SENDERS} clients`,
    target: `>= ${TARGET_APPEND_RATIO}`,
    value: `${ratio.toFixed(2)} (${rate(serviceTput)} msg/s / ${rate(pgbenchTps)} tps; pairs A1/B1 ${(a1.messagesPerSecond / b1.tps).toFixed(2)}, A2/B2 ${(a2.messagesPerSecond / b2.tps).toFixed(2)})`,
    pass: ratio >= TARGET_APPEND_RATIO,
  });

  say();
  say('targets');
  for (const t of report.targets) say(`  ${verdict(t.pass)}  ${t.name.padEnd(44)} ${t.target.padEnd(9)} measured ${t.value}`);
  say(`  info  ONE conversation, ${SENDERS} senders / pgbench      ${(sharedPhase.messagesPerSecond / pgbenchTps).toFixed(2)} (${rate(sharedPhase.messagesPerSecond)} msg/s)`);

  report.finishedAt = new Date().toISOString();
  report.loadAverage.end = loadavg().map((l) => round(l));
  const dir = fileURLToPath(new URL('../reports/', import.meta.url));
  await mkdir(dir, { recursive: true });
  const file = join(dir, `bench-store-${stamp}.json`);
  await writeFile(file, JSON.stringify(report, null, 2) + '\n');
  say();
  say(`report: ${file}`);
  if (report.errors.length) say(`errors: ${report.errors.length}\n  ${report.errors.join('\n  ')}`);
  say(`done in ${((performance.now() - wall) / 1000).toFixed(1)} s; load at the end ${report.loadAverage.end.join(' ')}`);
  if (report.errors.length || report.append.some((p) => p.errors || (p.integrity && !p.integrity.ok))) process.exitCode = 1;
}

try {
  await main();
} catch (err) {
  process.exitCode = 1;
  say(`\nbench:store failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  await cleanup();
}
// Exit explicitly: a gateway that did not close cleanly must not keep the process alive.
process.exit(process.exitCode ?? 0);
