/** (b) History in one long conversation: the service's pages against the same two queries over bare pg. */
import { LatencyRecorder, fmtGc, fmtSummary, watchGc, type GcSummary } from '../lib/latency.ts';
import { createConversation } from './append.ts';
import { query, type StoreContext } from './context.ts';
import { round, say, type HistoryShape } from './report.ts';

type HistoryQuery = { limit: number; before?: number; after?: number };

/** One bulk insert of `historyMessages` messages, alternating user and assistant, in a conversation of its own. */
export async function fillHistoryConversation(ctx: StoreContext): Promise<{ userId: string; conversationId: string; fillSeconds: number }> {
  const { sql } = ctx;
  const total = ctx.settings.historyMessages;
  const userId = `${ctx.ids.userPrefix}history`;
  const conversationId = await createConversation(ctx, userId, 'history bench');
  const t0 = performance.now();
  await sql.query('begin');
  await sql.query(
    `insert into messages (id, conversation_id, user_id, seq, role, status, content, metadata, client_message_id, created_at, updated_at)
     select gen_random_uuid(), $1, $2, g,
            case when g % 2 = 1 then 'user' else 'assistant' end, 'complete',
            'message ' || g || ': ' || repeat('lorem ipsum dolor sit amet ', 1 + g % 8),
            case when g % 2 = 0 then jsonb_build_object('model', 'echo', 'processingTimeMs', g % 997) end,
            case when g % 2 = 1 then 'hist-' || g end,
            now() - make_interval(secs => $3::int - g), now() - make_interval(secs => $3::int - g)
       from generate_series(1, $3::int) g`,
    [conversationId, userId, total],
  );
  await sql.query(`update conversations set last_seq = $2, updated_at = now() where id = $1`, [conversationId, total]);
  await sql.query('commit');
  // Settle statistics and the visibility map so autovacuum does not wake up in the middle of the measurement.
  await sql.query('vacuum (analyze) messages');
  await sql.query('analyze conversations');
  const fillSeconds = round((performance.now() - t0) / 1000, 2);
  say(
    `history conversation: filled ${total.toLocaleString('en')} messages with one insert ... select generate_series in ${fillSeconds} s (incl. vacuum analyze)`,
  );
  return { userId, conversationId, fillSeconds };
}

export async function historyBench(
  ctx: StoreContext,
  userId: string,
  conversationId: string,
): Promise<{ plan: string[]; gc: GcSummary; shapes: HistoryShape[] }> {
  const { sql, report } = ctx;
  const { historyMessages: total, historyLimit: limit, historyCalls } = ctx.settings;
  const { messages } = ctx.gateway.services;
  const middle = Math.floor(total / 2);
  const shapes: { name: string; query: HistoryQuery; first: number }[] = [
    { name: `latest ${limit}`, query: { limit }, first: total - limit + 1 },
    { name: `before ${middle}`, query: { limit, before: middle }, first: middle - limit },
    { name: `after ${Math.floor(total * 0.75)}`, query: { limit, after: Math.floor(total * 0.75) }, first: Math.floor(total * 0.75) + 1 },
  ];

  // Correctness first: each shape answers 50 messages in ascending seq, with more in the direction of travel.
  for (const s of shapes) {
    const page = await messages.history(userId, conversationId, s.query);
    const seqs = page.messages.map((m) => m.seq);
    const expected = Array.from({ length: limit }, (_, i) => s.first + i);
    if (seqs.join() !== expected.join() || !page.hasMore) {
      throw new Error(
        `history ${s.name} answered seq ${seqs[0]}..${seqs.at(-1)} (${seqs.length}), hasMore ${page.hasMore}; expected ${expected[0]}..${expected.at(-1)}, hasMore true`,
      );
    }
  }

  // The plan of the messages query (the shape `before` takes).
  const planRows = await query<{ 'QUERY PLAN': string }>(
    sql,
    `explain (analyze, buffers, costs off) select * from messages where conversation_id = $1 and user_id = $2 and seq < $3 order by seq desc limit $4`,
    [conversationId, userId, middle, limit + 1],
  );
  const plan = planRows.map((r) => r['QUERY PLAN']);
  say(
    `  plan (before): ${plan
      .filter((l) => /Scan|Limit|Execution/.test(l))
      .map((l) => l.trim())
      .join(' | ')}`,
  );

  // The same two queries the service runs, over one bare pg connection with bound parameters: the floor.
  const raw = async (q: HistoryQuery) => {
    await sql.query('select * from conversations where id = $1 and user_id = $2 limit 1', [conversationId, userId]);
    if (q.after !== undefined) {
      await sql.query('select * from messages where conversation_id = $1 and user_id = $2 and seq > $3 order by seq asc limit $4', [
        conversationId,
        userId,
        q.after,
        q.limit + 1,
      ]);
    } else if (q.before !== undefined) {
      await sql.query('select * from messages where conversation_id = $1 and user_id = $2 and seq < $3 order by seq desc limit $4', [
        conversationId,
        userId,
        q.before,
        q.limit + 1,
      ]);
    } else {
      await sql.query('select * from messages where conversation_id = $1 and user_id = $2 order by seq desc limit $3', [
        conversationId,
        userId,
        q.limit + 1,
      ]);
    }
  };

  const service = shapes.map(() => new LatencyRecorder());
  const rawPg = shapes.map(() => new LatencyRecorder());
  const warmup = 100;
  let watch: { stop: () => GcSummary } | undefined;
  // One call at a time, shapes interleaved round-robin (and service/raw alternated) so noise spreads evenly.
  for (let i = 0; i < warmup + historyCalls; i++) {
    if (i === warmup) watch = watchGc();
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
  const gc = watch!.stop();
  say(`  during the ${historyCalls * shapes.length * 2} measured calls: ${fmtGc(gc)}`);
  const measured: HistoryShape[] = [];
  for (let k = 0; k < shapes.length; k++) {
    const shape: HistoryShape = {
      name: shapes[k]!.name,
      query: shapes[k]!.query,
      service: service[k]!.summary(),
      rawPg: rawPg[k]!.summary(),
    };
    measured.push(shape);
    say(`  ${(`service ${shape.name}`).padEnd(34)} ${fmtSummary(shape.service)}`);
    say(`  ${('  raw pg, same 2 queries').padEnd(34)} ${fmtSummary(shape.rawPg)}`);
  }
  return { plan, gc, shapes: measured };
}
