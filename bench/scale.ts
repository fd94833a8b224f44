// `npm run bench:scale`: what each message costs as nodes are added, for each Redis adapter variant and with a
// user's tabs spread over the nodes or kept on one (user-affine routing). Options: bench/scale/options.ts, or
// `npm run bench:scale -- --help`. The capacity model built on its figures: docs/scaling.md.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ensureServices } from './ceiling/nodes.ts';
import { Cleanup, cleanUpOnExit } from './lib/cleanup.ts';
import { exitWithUsageError, UsageError } from './lib/cli.ts';
import { createDatabase } from './lib/database.ts';
import { formatResult, measureNodeSet, type ScaleContext, type ScaleResult } from './scale/measure.ts';
import { HELP, readScaleSettings, type ScaleSettings } from './scale/options.ts';
import { startPrivateRedis } from './scale/probes.ts';

let settings: ScaleSettings | null;
try {
  settings = readScaleSettings(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) exitWithUsageError('bench:scale', err.message);
  throw err;
}
if (!settings) {
  process.stdout.write(HELP);
  process.exit(0);
}
const chosen = settings;

// With --json, stdout carries the report alone; the progress goes to stderr.
const say = (line: string) => (chosen.json ? process.stderr : process.stdout).write(`${line}\n`);
const cleanup = new Cleanup(say);
cleanUpOnExit(cleanup, say);

const machine = `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load ${loadavg()
  .map((l) => l.toFixed(2))
  .join(' ')} at the start; the load generator, PostgreSQL and Redis share these cores`;

async function runScale(s: ScaleSettings): Promise<ScaleResult[]> {
  await ensureServices(say);
  const dbName = `chat_bench_${Date.now()}`;
  const databaseUrl = await createDatabase(s.adminUrl, dbName, cleanup);
  const redisUrl = s.redisUrl ?? (await startPrivateRedis(cleanup));
  const ctx: ScaleContext = { settings: s, secret: randomBytes(32).toString('hex'), databaseUrl, redisUrl, cleanup, say };
  say(`chat-gateway bench:scale: ${s.users} users × ${s.tabs} tabs at ${s.rate} msg/s, ${s.durationS} s recorded per configuration`);
  say(`machine: ${machine}`);
  say(`database: ${dbName}, dropped at the end; Redis: ${s.redisUrl ? redisUrl : `private redis-server at ${redisUrl}`}`);
  const results: ScaleResult[] = [];
  for (const count of s.nodes) {
    for (const adapter of s.adapters) {
      if (!s.baseline) {
        results.push(...(await measureNodeSet(ctx, count, adapter)));
        continue;
      }
      // A B, B A, …: whatever drifts on the machine during the run weighs on both sides alike.
      for (let round = 0; round < s.rounds; round++) {
        const order = round % 2 === 0 ? (['baseline', 'this'] as const) : (['this', 'baseline'] as const);
        for (const checkout of order) results.push(...(await measureNodeSet(ctx, count, adapter, checkout)));
      }
    }
  }
  return results;
}

/** The label of this checkout's rows: `B ` in an A/B run. */
const s0 = (s: ScaleSettings) => (s.baseline ? 'B ' : '');

let results: ScaleResult[] | undefined;
try {
  results = await runScale(chosen);
} catch (err) {
  process.exitCode = 1;
  if (!cleanup.started) process.stderr.write(`bench:scale failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
} finally {
  await cleanup.run();
}

if (results) {
  const report = { command: `npm run bench:scale -- ${process.argv.slice(2).join(' ')}`.trim(), machine, settings: chosen, results };
  const root = fileURLToPath(new URL('..', import.meta.url));
  mkdirSync(`${root}reports`, { recursive: true });
  const file = `${root}reports/bench-scale-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  if (chosen.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    say('\nsummary (per acknowledged message; "in" is what one node receives from Redis per publish)');
    for (const r of results) {
      const name = `${r.checkout === 'baseline' ? 'A ' : s0(chosen)}${r.nodes} nodes ${r.adapter} ${r.placement}`;
      say(`  ${name.padEnd(32)} ${formatResult(r)}`);
    }
    if (results.some((r) => r.redisBytesInPerPublishPerNode === null)) {
      say('  n/a: this build has no chat_redis_* counters (nor, then, REDIS_SUBSCRIPTION_MODE: sharded-dynamic ran as static)');
    }
    say(`report: ${file}`);
  }
  if (results.some((r) => !r.verified)) process.exitCode = 1;
}
