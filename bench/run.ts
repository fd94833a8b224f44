// `npm run bench`: in ONE run, so that ratios hold on a noisy machine,
//   (a) the transport ceiling: the same Socket.IO + Redis adapter fan-out of the same events, persistence off
//       (bench/transport-server.ts, bench only),
//   (b) the full gateway path: JWT, validation, unit of work, seq, idempotency, commit, ack, Redis fan-out,
// each by stepping the offered rate up until p99 fan-out passes 100 ms (on two attempts: see measure()) or
// anything is lost; then latency at a fixed 500 msg/s on both, and heap and RSS per idle authenticated socket on
// one node. Options: bench/ceiling/options.ts, or `npm run bench -- --help`.
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { measure, type BenchContext, type Ceiling } from './ceiling/measure.ts';
import { ensureServices } from './ceiling/nodes.ts';
import { HELP, readBenchSettings, TABS, USERS, type BenchSettings } from './ceiling/options.ts';
import { printSummary } from './ceiling/summary.ts';
import { Cleanup, cleanUpOnExit } from './lib/cleanup.ts';
import { readCommandLine, settingsOrExit } from './lib/cli.ts';
import { createDatabase } from './lib/database.ts';
import { measureSocketMemory, type MemoryResult } from './memory/measure.ts';

readCommandLine('bench', HELP);
const settings = settingsOrExit('bench', () => readBenchSettings(process.env));

const say = (line: string) => process.stdout.write(`${line}\n`);
const cleanup = new Cleanup(say);
cleanUpOnExit(cleanup, say);

async function runBench(settings: BenchSettings, cleanup: Cleanup): Promise<{ results: Ceiling[]; memory?: MemoryResult }> {
  await ensureServices(say);
  const dbName = `chat_bench_${Date.now()}`;
  const databaseUrl = await createDatabase(settings.adminUrl, dbName, cleanup);
  const ctx: BenchContext = { settings, secret: randomBytes(32).toString('hex'), databaseUrl, cleanup, say };
  say(`chat-gateway bench: 2 nodes, ${USERS} users × ${TABS} tabs (one per node), steps of ${settings.stepS} s`);
  say(
    `machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; the load generator shares these cores`,
  );
  say(`database: ${dbName}, dropped at the end`);
  if (settings.baseline) say(`baseline (A side): the gateway of ${settings.baseline}, measured just before this checkout's`);
  const results = [await measure(ctx, 'transport (persistence off)', 'bench/transport-server.ts', 'classic', false)];
  for (const adapter of settings.adapters) {
    if (settings.baseline) {
      results.push(await measure(ctx, `baseline (${adapter} adapter)`, 'src/server.ts', adapter, true, settings.baseline));
    }
    results.push(await measure(ctx, `gateway (${adapter} adapter)`, 'src/server.ts', adapter, true));
  }
  if (settings.skipMemory) return { results };
  say(
    `\nmemory: ${settings.sockets.toLocaleString('en')} idle authenticated sockets on one node (a process may hold 20,000 descriptors here)`,
  );
  return { results, memory: await measureSocketMemory({ sockets: settings.sockets, databaseUrl, cleanup }) };
}

let outcome: Awaited<ReturnType<typeof runBench>> | undefined;
try {
  outcome = await runBench(settings, cleanup);
} catch (err) {
  process.exitCode = 1;
  // Once the cleanup has begun (a signal), the load that it cut short fails as a matter of course.
  if (!cleanup.started) process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
} finally {
  await cleanup.run();
}
if (outcome) printSummary(say, settings, outcome.results, outcome.memory);
