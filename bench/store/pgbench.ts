/** (c) pgbench: the same two statements per transaction as an append, N clients, one conversation each. */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stopChild } from '../lib/cleanup.ts';
import type { StoreContext } from './context.ts';
import { CONTENT } from './options.ts';
import { rate, round, say, type PgbenchRun } from './report.ts';

const execFileAsync = promisify(execFile);

export async function preparePgbench(ctx: StoreContext, clients: number): Promise<{ script: string; conversationIds: string[] }> {
  const { runId, userPrefix } = ctx.ids;
  const userId = `${userPrefix}pgbench`;
  const idOf = (n: number) => `${runId}-0000-7000-8000-${String(n).padStart(12, '0')}`;
  const conversationIds = Array.from({ length: clients }, (_, n) => idOf(n));
  await ctx.sql.query(`insert into users (id, created_at) values ($1, now())`, [userId]);
  await ctx.sql.query(
    `insert into conversations (id, user_id, title, last_seq, created_at, updated_at)
     select ('${runId}-0000-7000-8000-' || lpad(g::text, 12, '0'))::uuid, $1, 'pgbench ' || g, 0, now(), now()
       from generate_series(0, $2::int - 1) g`,
    [userId, clients],
  );
  // :client_id is pgbench's 0-based client number: each client appends into its own conversation, as each
  // service sender does. The statements are those of a one-message-per-transaction append (the baseline
  // the append target is stated against), whatever the service does internally.
  const conv = `('${runId}-0000-7000-8000-' || lpad(:client_id::text, 12, '0'))::uuid`;
  const script = [
    'BEGIN;',
    `UPDATE conversations SET last_seq = last_seq + 1, updated_at = now() WHERE id = ${conv} AND user_id = '${userId}' RETURNING last_seq AS seq \\gset`,
    `INSERT INTO messages (id, conversation_id, user_id, seq, role, status, content, metadata, client_message_id, created_at, updated_at) ` +
      `VALUES (gen_random_uuid(), ${conv}, '${userId}', :seq, 'user', 'complete', '${CONTENT}', NULL, gen_random_uuid()::text, now(), now());`,
    'END;',
    '',
  ].join('\n');
  const file = join(ctx.tmp, 'append.pgbench');
  await writeFile(file, script);
  return { script: file, conversationIds };
}

export async function runPgbench(ctx: StoreContext, name: string, scriptFile: string, clients: number): Promise<PgbenchRun> {
  const { seconds } = ctx.settings;
  const u = new URL(ctx.databaseUrl);
  const args = [
    '-n',
    '-c',
    String(clients),
    '-j',
    String(Math.min(2, clients)),
    '-T',
    String(seconds),
    '-f',
    scriptFile,
    '-h',
    u.hostname || '127.0.0.1',
    '-p',
    u.port || '5432',
    '-U',
    decodeURIComponent(u.username || 'postgres'),
    decodeURIComponent(u.pathname.slice(1)),
  ];
  const env = { ...process.env, ...(u.password ? { PGPASSWORD: decodeURIComponent(u.password) } : {}) };
  const pending = execFileAsync(ctx.settings.pgbench, args, { env, timeout: (seconds + 60) * 1000, maxBuffer: 1 << 20 });
  const stopped = ctx.cleanup.add('pgbench', () => stopChild(pending.child));
  let stdout: string;
  try {
    ({ stdout } = await pending);
  } finally {
    await stopped();
  }
  const num = (re: RegExp) => {
    const m = re.exec(stdout);
    return m ? Number(m[1]) : null;
  };
  const tps = num(/^tps = ([\d.]+)/m);
  if (tps === null) throw new Error(`pgbench printed no tps:\n${stdout}`);
  const run: PgbenchRun = {
    name,
    clients,
    seconds,
    tps: round(tps, 1),
    transactions: num(/number of transactions actually processed: (\d+)/) ?? 0,
    failed: num(/number of failed transactions: (\d+)/) ?? 0,
    latencyAvgMs: num(/latency average = ([\d.]+) ms/),
  };
  say(
    `  ${name.padEnd(38)} ${rate(run.tps).padStart(6)} tps     avg latency ${run.latencyAvgMs ?? '?'} ms (${run.transactions} transactions, ${run.failed} failed)`,
  );
  if (run.failed) ctx.report.errors.push(`${name}: ${run.failed} failed pgbench transactions`);
  return run;
}
