/** The store benchmark's report: its JSON shape, the printed lines' helpers, the targets and the file under reports/. */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, hostname, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { fmtMs, type GcSummary, type LatencySummary } from '../lib/latency.ts';
import { TARGET_APPEND_RATIO, TARGET_HISTORY_P99_MS, type StoreSettings } from './options.ts';

const execFileAsync = promisify(execFile);

export const say = (line = '') => process.stdout.write(`${line}\n`);
export const rate = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

export interface AppendPhase {
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

export interface PgbenchRun {
  name: string;
  clients: number;
  seconds: number;
  tps: number;
  transactions: number;
  failed: number;
  latencyAvgMs: number | null;
}

export interface HistoryShape {
  name: string;
  query: { limit: number; before?: number; after?: number };
  service: LatencySummary;
  rawPg: LatencySummary;
}

export type StoreReport = ReturnType<typeof newStoreReport>;

export function newStoreReport(settings: StoreSettings, startedAt: Date) {
  return {
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
      seconds: settings.seconds,
      warmupMs: settings.warmupMs,
      maxMessagesPerPhase: settings.maxMessages,
      senders: settings.senders,
      historyMessages: settings.historyMessages,
      historyCallsPerShape: settings.historyCalls,
      historyLimit: settings.historyLimit,
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
}

/** Which code was measured: the commit, and whether src/ had uncommitted changes. */
export async function gitState(): Promise<{ commit: string; srcDirty: boolean; changes: string[] }> {
  const cwd = fileURLToPath(new URL('../..', import.meta.url));
  try {
    const head = await execFileAsync('git', ['rev-parse', '--short', 'HEAD'], { cwd });
    const status = await execFileAsync('git', ['status', '--porcelain', '--', 'src', 'migrations'], { cwd });
    const changes = status.stdout.split('\n').filter(Boolean);
    return { commit: head.stdout.trim(), srcDirty: changes.length > 0, changes };
  } catch {
    return { commit: '', srcDirty: false, changes: [] };
  }
}

/**
 * Judges the targets and prints them. The append ratio compares the means of the alternated pairs (A1 B1 B2 A2), so a
 * drift of the machine during the run weighs on both sides alike.
 */
export function judgeTargets(
  report: StoreReport,
  senders: number,
  pairs: { a1: AppendPhase; a2: AppendPhase; b1: PgbenchRun; b2: PgbenchRun },
  sharedPhase: AppendPhase,
): void {
  const { a1, a2, b1, b2 } = pairs;
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
    name: `append ${senders} senders / pgbench ${senders} clients`,
    target: `>= ${TARGET_APPEND_RATIO}`,
    value: `${ratio.toFixed(2)} (${rate(serviceTput)} msg/s / ${rate(pgbenchTps)} tps; pairs A1/B1 ${(a1.messagesPerSecond / b1.tps).toFixed(2)}, A2/B2 ${(a2.messagesPerSecond / b2.tps).toFixed(2)})`,
    pass: ratio >= TARGET_APPEND_RATIO,
  });

  say();
  say('targets');
  for (const t of report.targets) say(`  ${verdict(t.pass)}  ${t.name.padEnd(44)} ${t.target.padEnd(9)} measured ${t.value}`);
  say(
    `  info  ONE conversation, ${senders} senders / pgbench      ${(sharedPhase.messagesPerSecond / pgbenchTps).toFixed(2)} (${rate(sharedPhase.messagesPerSecond)} msg/s)`,
  );
}

/** Writes reports/bench-store-<stamp>.json and returns its path. */
export async function writeReport(report: StoreReport, stamp: string): Promise<string> {
  report.finishedAt = new Date().toISOString();
  report.loadAverage.end = loadavg().map((l) => round(l));
  const dir = fileURLToPath(new URL('../../reports/', import.meta.url));
  await mkdir(dir, { recursive: true });
  const file = join(dir, `bench-store-${stamp}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
