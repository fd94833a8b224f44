/** (a) Appends through the gateway's service, timed phase by phase, with the raw-pg floor beside them. */
import type pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { LatencyRecorder, fmtGc, fmtSummary, watchGc } from '../lib/latency.ts';
import { query, type StoreContext } from './context.ts';
import { CONTENT } from './options.ts';
import { rate, round, say, type AppendPhase } from './report.ts';

export interface Sender {
  userId: string;
  conversationId: string;
}

export type SendFn = (sender: Sender, clientMessageId: string) => Promise<unknown>;

export async function createConversation(ctx: StoreContext, userId: string, title: string): Promise<string> {
  const outcome = await ctx.gateway.services.conversations.create(userId, { title });
  return outcome.data.conversation.id;
}

/** The gateway's own path: services.messages.append (what message:send and POST .../messages call). */
export function serviceSend(ctx: StoreContext): SendFn {
  return (s, clientMessageId) =>
    ctx.gateway.services.messages.append(s.userId, { conversationId: s.conversationId, content: CONTENT, clientMessageId });
}

/** The same path without a clientMessageId (REST without Idempotency-Key): no duplicate pre-check query. */
export function serviceSendNoId(ctx: StoreContext): SendFn {
  return (s) => ctx.gateway.services.messages.append(s.userId, { conversationId: s.conversationId, content: CONTENT });
}

/**
 * Diagnostic floor for a Node implementation: the two statements of an append in one transaction over a
 * plain pg pool of the gateway's size (no ORM, no pre-check), bound parameters as the ORM sends them.
 */
export function rawPgSend(pool: pg.Pool): SendFn {
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

export async function appendPhase(
  ctx: StoreContext,
  name: string,
  senders: Sender[],
  sendFn: SendFn,
  opts: { warmupPerSender?: number; checkConversation?: string } = {},
): Promise<AppendPhase> {
  const { settings, report } = ctx;
  let serial = 0;
  const send = (s: Sender, i: number) => sendFn(s, `${ctx.ids.runId}-${name}-${i}-${serial++}`);

  // Warm-up (not recorded): fills the pool, JITs the path, lets batches settle. At least a few appends per
  // sender, then until the warm-up time has passed.
  const warmupEnd = performance.now() + settings.warmupMs;
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
  const deadline = t0 + settings.seconds * 1000;
  await Promise.all(
    senders.map(async (s, i) => {
      while (performance.now() < deadline && started < settings.maxMessages) {
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
  if (opts.checkConversation) phase.integrity = await checkSeqs(ctx.sql, opts.checkConversation);
  say(
    `  ${name.padEnd(38)} ${rate(phase.messagesPerSecond).padStart(6)} msg/s   ${fmtSummary(phase.latency)}${errors ? `   ERRORS ${errors}` : ''}`,
  );
  say(
    `  ${''.padEnd(38)} this process: ${phase.nodeCpu.percentOfOneCore}% of a core, ${phase.nodeCpu.msPerMessage} ms CPU per message; ${fmtGc(phase.gc)}`,
  );
  if (phase.integrity) say(`  ${''.padEnd(38)} seq check: ${phase.integrity.ok ? 'ok' : 'BROKEN'} (${phase.integrity.detail})`);
  return phase;
}

/** seq must be 1..n with no gap and no repeat, and last_seq must equal n. */
export async function checkSeqs(sql: pg.Client, conversationId: string): Promise<{ ok: boolean; detail: string }> {
  const [row] = await query<{ n: string; distinct_seqs: string; min: string; max: string; last_seq: string }>(
    sql,
    `select count(*) as n, count(distinct m.seq) as distinct_seqs, min(m.seq) as min, max(m.seq) as max,
            (select last_seq from conversations where id = $1) as last_seq
       from messages m where m.conversation_id = $1`,
    [conversationId],
  );
  const n = Number(row!.n);
  const ok = n === Number(row!.distinct_seqs) && Number(row!.min) === 1 && Number(row!.max) === n && Number(row!.last_seq) === n;
  return { ok, detail: `${n} messages, seq ${row!.min}..${row!.max}, last_seq ${row!.last_seq}` };
}
