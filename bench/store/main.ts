/** The store benchmark from start to report: the order of the phases, and why it is that order. */
import { cpus } from 'node:os';
import pg from 'pg';
import type { Cleanup } from '../lib/cleanup.ts';
import { appendPhase, checkSeqs, createConversation, rawPgSend, serviceSend, serviceSendNoId, type Sender } from './append.ts';
import { newRunIds } from './context.ts';
import { fillHistoryConversation, historyBench } from './history.ts';
import type { StoreSettings } from './options.ts';
import { preparePgbench, runPgbench } from './pgbench.ts';
import { judgeTargets, newStoreReport, say, writeReport } from './report.ts';
import { setUp } from './setup.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sets process.exitCode to 1 when an append, a pgbench run or a seq check went wrong; throws on a failure. */
export async function runStoreBench(settings: StoreSettings, cleanup: Cleanup): Promise<void> {
  const wall = performance.now();
  const ids = newRunIds();
  const report = newStoreReport(settings, ids.startedAt);
  const { senders: n } = settings;
  say(
    `bench:store  run ${ids.runId}  ${ids.startedAt.toISOString()}  node ${process.version}  ${cpus().length} cpus  load ${report.loadAverage.start.join(' ')}`,
  );
  const ctx = await setUp(settings, ids, report, cleanup);

  // Scratch conversations.
  const one: Sender = { userId: `${ids.userPrefix}solo`, conversationId: '' };
  one.conversationId = await createConversation(ctx, one.userId, 'solo');
  const own: Sender[] = [];
  for (let i = 0; i < n; i++) {
    const userId = `${ids.userPrefix}u${i}`;
    own.push({ userId, conversationId: await createConversation(ctx, userId, `sender ${i}`) });
  }
  const sharedUser = `${ids.userPrefix}shared`;
  const sharedConversation = await createConversation(ctx, sharedUser, 'shared');
  const shared: Sender[] = Array.from({ length: n }, () => ({ userId: sharedUser, conversationId: sharedConversation }));
  const pgb = await preparePgbench(ctx, n);

  // The 100,000-message conversation goes in first: the append phases then run against a table of realistic
  // size (on a near-empty table the planner picks other plans, e.g. the batcher's idempotency lookup
  // becomes a seq scan + hash join, and the first phases would be measured on a different database).
  say();
  const hist = await fillHistoryConversation(ctx);
  report.history.fillSeconds = hist.fillSeconds;

  say();
  say('(a)+(c) appends: service vs pgbench, alternated A B B A');
  const send = serviceSend(ctx);
  report.append.push(
    await appendPhase(ctx, 'service, 1 sender', [one], send, { warmupPerSender: 50, checkConversation: one.conversationId }),
  );
  const a1 = await appendPhase(ctx, `service, ${n} senders, own conv [A1]`, own, send, { checkConversation: own[0]!.conversationId });
  report.append.push(a1);
  const b1 = await runPgbench(ctx, `pgbench, ${n} clients [B1]`, pgb.script, n);
  report.pgbench.push(b1);
  await sleep(200);
  const b2 = await runPgbench(ctx, `pgbench, ${n} clients [B2]`, pgb.script, n);
  report.pgbench.push(b2);
  const a2 = await appendPhase(ctx, `service, ${n} senders, own conv [A2]`, own, send, { checkConversation: own[0]!.conversationId });
  report.append.push(a2);
  const sharedPhase = await appendPhase(ctx, `service, ${n} senders, ONE conv`, shared, send, { checkConversation: sharedConversation });
  report.append.push(sharedPhase);

  say('  diagnostics (where the time goes; not part of the targets)');
  const rawPool = new pg.Pool({ connectionString: ctx.databaseUrl, max: report.settings.dbPoolMax });
  try {
    report.append.push(
      await appendPhase(ctx, `raw pg from Node, ${n} senders, own`, own, rawPgSend(rawPool), { checkConversation: own[1]!.conversationId }),
    );
  } finally {
    await rawPool.end();
  }
  report.append.push(
    await appendPhase(ctx, `service no clientMessageId, ${n}, own`, own, serviceSendNoId(ctx), {
      checkConversation: own[2]!.conversationId,
    }),
  );
  const pgbenchCheck = await checkSeqs(ctx.sql, pgb.conversationIds[0]!);
  if (!pgbenchCheck.ok) report.errors.push(`pgbench conversation seq check: ${pgbenchCheck.detail}`);

  say();
  say(
    `(b) history: one conversation of ${settings.historyMessages.toLocaleString('en')} messages, limit ${settings.historyLimit}, ${settings.historyCalls} calls per shape, one at a time`,
  );
  const t0 = performance.now();
  await ctx.sql.query('vacuum (analyze) messages'); // settle after the append phases, so autovacuum stays out of the measurement
  say(`  vacuum analyze after the append phases: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  const history = await historyBench(ctx, hist.userId, hist.conversationId);
  report.history.plan = history.plan;
  report.history.gc = history.gc;
  report.history.shapes = history.shapes;

  judgeTargets(report, n, { a1, a2, b1, b2 }, sharedPhase);

  const file = await writeReport(report, ids.stamp);
  say();
  say(`report: ${file}`);
  if (report.errors.length) say(`errors: ${report.errors.length}\n  ${report.errors.join('\n  ')}`);
  say(`done in ${((performance.now() - wall) / 1000).toFixed(1)} s; load at the end ${report.loadAverage.end.join(' ')}`);
  if (report.errors.length || report.append.some((p) => p.errors || (p.integrity && !p.integrity.ok))) process.exitCode = 1;
}
