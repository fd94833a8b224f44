// `npm run bench:faults`: the fault suite's drills (test/helpers/fault-drills.ts) run as a report rather than as
// assertions. Each drill applies one fault to a cluster of real gateway processes (every node behind proxies of its
// own to PostgreSQL and Redis), ends it, and measures how long each SDK tab took to agree with the database after
// the fault ended, and whether anything acknowledged was lost or duplicated.
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, hostname, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exitWithUsageError, readCommandLine } from './lib/cli.ts';
import { Cleanup, cleanUpOnExit } from './lib/cleanup.ts';

const PROGRAM = 'bench:faults';
const DRILLS = [
  'kill-mid-reply',
  'kill-after-ack',
  'redis-cut',
  'redis-hung',
  'redis-down-10s',
  'redis-down-30s',
  'pg-down-at-start',
  'pg-down-at-end',
  'pg-partition-at-end',
  'pg-row-lock',
  'sigterm-locked-table',
  'sigterm-stalled-client',
  'reconnect-storm',
] as const;
type DrillName = (typeof DRILLS)[number];

const chosen = readCommandLine(
  PROGRAM,
  `Usage: npm run bench:faults [-- <drill>...]

Runs the fault drills of the fault suite (test/faults) against three real gateway processes, each reaching
PostgreSQL and Redis through proxies of its own (so a fault hits one node, or all of them), with SDK tabs spread
over the nodes (3 users x 3 tabs; 150 + 30 tabs for the reconnect storm). For each fault kind it prints how long
the tabs took to agree with the database after the fault ended (median and max over tabs; a tab agrees when its
messages and conversation list equal what PostgreSQL holds, no reply left streaming) and the integrity verdict
(no acknowledged message lost or duplicated, one reply per message, every reply ended). Writes the whole result to
reports/bench-faults-<time>.json. Exits 1 when a drill did not converge or lost integrity.

The nodes run with short bounds (REPLY_STALE_MS=3000, WRITE_TIMEOUT_MS=1500, SYNC_SPREAD_MS=300,
SHUTDOWN_TIMEOUT_MS=3000, REDIS_COMMAND_TIMEOUT_MS=500) and an echo assistant at 50 ms a word. Needs PostgreSQL
and Redis on 127.0.0.1 (TEST_PG_URL and TEST_REDIS_URL point elsewhere); makes a fresh database and drops it.
All drills take about three minutes.

Drills (all of them by default)
  ${DRILLS.join('\n  ')}

Options
  -h, --help    this text

Example
  npm run bench:faults
  npm run bench:faults -- redis-cut reconnect-storm
`,
  { maxPositionals: DRILLS.length },
);
for (const name of chosen) if (!(DRILLS as readonly string[]).includes(name)) exitWithUsageError(PROGRAM, `unknown drill '${name}'`);
const selected: DrillName[] = chosen.length > 0 ? (chosen as DrillName[]) : [...DRILLS];

// Loaded after the command line is read: --help and a mistake touch nothing.
const { startFaultCluster, FAULT_BOUNDS } = await import('../test/helpers/fault-cluster.ts');
const drills = await import('../test/helpers/fault-drills.ts');
const { median } = await import('../test/helpers/convergence.ts');
type FaultCluster = Awaited<ReturnType<typeof startFaultCluster>>;
type DrillResult = Awaited<ReturnType<typeof drills.nodeKillMidReply>>;

const RUN: Record<DrillName, (cluster: FaultCluster) => Promise<DrillResult>> = {
  'kill-mid-reply': (c) => drills.nodeKillMidReply(c),
  'kill-after-ack': (c) => drills.nodeKillAfterAck(c),
  'redis-cut': (c) => drills.redisSubscriberCut(c, 3000),
  'redis-hung': (c) => drills.redisHung(c, 4000),
  'redis-down-10s': (c) => drills.redisUnreachable(c, 10_000),
  'redis-down-30s': (c) => drills.redisUnreachable(c, 30_000),
  'pg-down-at-start': (c) => drills.postgresDownAtReplyStart(c, 3000),
  'pg-down-at-end': (c) => drills.postgresDownAtReplyEnd(c, 2500, 'all'),
  'pg-partition-at-end': (c) => drills.postgresDownAtReplyEnd(c, 2500, 'node'),
  'pg-row-lock': (c) => drills.postgresLocked(c, FAULT_BOUNDS.WRITE_TIMEOUT_MS * 3),
  'sigterm-locked-table': (c) => drills.sigtermLockedTable(c),
  'sigterm-stalled-client': (c) => drills.sigtermStalledClient(c),
  'reconnect-storm': (c) => drills.reconnectStorm(c, { users: 30, tabsPerUser: 5 }),
};

const say = (line = '') => process.stdout.write(`${line}\n`);
const cleanup = new Cleanup();
cleanUpOnExit(cleanup, (line) => process.stderr.write(`${line}\n`));

const startedAt = new Date();
say(
  `${PROGRAM}: ${selected.length} drills on 3 nodes (${cpus().length} cores, load ${loadavg()[0]!.toFixed(1)}), bounds ${JSON.stringify(FAULT_BOUNDS)}`,
);
const cluster = await startFaultCluster({ nodes: 3 });
const closeCluster = cleanup.add('fault cluster', () => cluster.close());

const results: { name: DrillName; result?: DrillResult; error?: string }[] = [];
for (const name of selected) {
  try {
    const result = await RUN[name](cluster);
    results.push({ name, result });
    const ms = result.convergence.tabs.map((t) => t.ms);
    say(`  ${name}: ${verdict(result)}; ${ms.length} tabs, median ${median(ms) ?? '-'} ms, max ${ms.length ? Math.max(...ms) : '-'} ms`);
  } catch (err) {
    results.push({ name, error: (err as Error).message });
    say(`  ${name}: the drill failed: ${(err as Error).message}`);
  }
}
await closeCluster();

say();
const header = ['fault', 'lasted', 'tabs', 'median', 'max', 'db settled', 'integrity'];
const rows = results.map(({ name, result, error }) => {
  if (!result) return [name, '-', '-', '-', '-', '-', `drill failed: ${error}`];
  const ms = result.convergence.tabs.map((t) => t.ms);
  return [
    result.kind,
    `${(result.faultMs / 1000).toFixed(1)} s`,
    String(ms.length),
    ms.length ? `${median(ms)} ms` : '-',
    ms.length ? `${Math.max(...ms)} ms` : '-',
    result.convergence.settledMs === undefined ? '-' : `${result.convergence.settledMs} ms`,
    verdict(result),
  ];
});
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) =>
  cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
say('Convergence after the fault ended (each tab: until its view equalled the database; median and max over tabs)');
say(line(header));
for (const r of rows) say(line(r));
say();
say('What each drill saw');
for (const { result } of results) {
  if (!result) continue;
  const { catchUpsAsked, nodeWarnings, ...observed } = result.observed;
  const asked = Array.isArray(catchUpsAsked) ? `; catch-ups asked: ${catchUpsAsked.length}` : '';
  say(`  ${result.kind}: ${JSON.stringify(observed)}${asked}`);
  for (const problem of [...result.convergence.problems, ...result.integrity.problems]) say(`    problem: ${problem}`);
  if (Array.isArray(nodeWarnings)) for (const w of nodeWarnings) say(`    node: ${w}`);
}

const file = await writeReport();
say();
say(`report: ${file}`);
const failed = results.some(({ result }) => !(result?.convergence.converged && result.integrity.ok));
process.exit(failed ? 1 : 0);

function verdict(result: DrillResult): string {
  const { counts } = result.integrity;
  const replies = Object.entries(counts.replies)
    .map(([status, n]) => `${n} ${status}`)
    .join(', ');
  const integrity = result.integrity.ok
    ? `ok: ${counts.acked}/${counts.sends} sends acknowledged, ${counts.userMessages} stored once, replies ${replies}`
    : `LOST INTEGRITY (${result.integrity.problems.length} problems)`;
  return result.convergence.converged ? integrity : `NOT CONVERGED (${result.convergence.problems.length} tabs); ${integrity}`;
}

async function writeReport(): Promise<string> {
  const dir = fileURLToPath(new URL('../reports/', import.meta.url));
  await mkdir(dir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const path = join(dir, `bench-faults-${stamp}.json`);
  const report = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    host: { name: hostname(), cores: cpus().length, loadAverage: loadavg() },
    bounds: FAULT_BOUNDS,
    results,
  };
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
  return path;
}
