// The bench programs as a user runs them, as real processes. Every CLI: -h/--help prints its usage and exits 0
// without touching anything (no chat_bench_* database, no report, no server: a started server would keep the
// process from exiting), and an unknown option exits 2 with the problem named. `npm run bench` stopped part-way
// (SIGINT as from Ctrl-C, SIGTERM) or failing after it created its database: its nodes are gone and its database
// is dropped within a bound. One file, so its tests run one after another: the help test's "no database appeared"
// must not see the database of an interrupted run.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { existsSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, benchDatabases, commandOf, descendants, dropDatabase, ROOT } from './helpers.ts';

const CLIS = [
  { script: 'bench/run.ts', usage: 'Usage: npm run bench ' },
  { script: 'bench/store.ts', usage: 'Usage: npm run bench:store' },
  { script: 'bench/memory/run.ts', usage: 'Usage: npm run bench:memory' },
  { script: 'bench/jwt-verify.ts', usage: 'Usage: npm run bench:jwt' },
  { script: 'bench/loadtest/cli.ts', usage: 'Usage: npm run loadtest' },
  { script: 'bench/faults.ts', usage: 'Usage: npm run bench:faults' },
  { script: 'bench/scale.ts', usage: 'Usage: npm run bench:scale' },
];

function run(script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

const reports = () => (existsSync(`${ROOT}reports`) ? readdirSync(`${ROOT}reports`).sort() : []);

describe('bench command lines', () => {
  it('answer -h and --help with their usage, exit 0 and leave nothing behind', async () => {
    const databasesBefore = await benchDatabases();
    const reportsBefore = reports();

    const runs = await Promise.all(
      CLIS.flatMap((cli) => ['--help', '-h'].map(async (flag) => ({ cli, flag, ...(await run(cli.script, [flag])) }))),
    );

    for (const { cli, flag, code, stdout, stderr } of runs) {
      const what = `${cli.script} ${flag}`;
      expect(code, `${what}: ${stderr}`).toBe(0);
      expect(stdout.startsWith(cli.usage), what).toBe(true);
      expect(stdout, what).toMatch(/\n\s*-h, --help/);
      expect(stdout, what).toContain('Example');
      expect(stderr, what).toBe('');
    }
    expect(await benchDatabases()).toEqual(databasesBefore);
    expect(reports()).toEqual(reportsBefore);
  });

  it('refuse an unknown option with exit code 2 and say which', async () => {
    const runs = await Promise.all(CLIS.map(async (cli) => ({ cli, ...(await run(cli.script, ['--no-such-option'])) })));
    for (const { cli, code, stdout, stderr } of runs) {
      expect(code, `${cli.script}: ${stderr}`).toBe(2);
      expect(stderr, cli.script).toContain("'--no-such-option'");
      expect(stderr, cli.script).toContain('--help');
      expect(stdout, cli.script).toBe('');
    }
  });
});

/** Cleanup stops each node with SIGTERM, then SIGKILL after 5 s, then drops the database: well inside this. */
const EXIT_BOUND_MS = 20_000;

const SHORT = { BENCH_SKIP_MEMORY: '1', BENCH_WARMUP_S: '60', BENCH_STEP_S: '1', BENCH_RATES: '100' };

/** What the current run started, so that a failing test still leaves nothing behind. */
let started: { bench: ChildProcess; children: { pid: number; cmdline: string }[]; database?: string } | undefined;
afterEach(async () => {
  if (!started) return;
  // By pid only: the bench itself and the children found under it while it ran, if that pid still runs their command.
  if (started.bench.exitCode === null && started.bench.signalCode === null) started.bench.kill('SIGKILL');
  for (const child of started.children) if (commandOf(child.pid) === child.cmdline) process.kill(child.pid, 'SIGKILL');
  if (started.database && (await benchDatabases()).includes(started.database)) await dropDatabase(started.database);
  started = undefined;
});

function startBench(env: Record<string, string>) {
  const child = spawn(process.execPath, ['bench/run.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, exited, out: () => stdout, err: () => stderr };
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function exitWithin(exited: Promise<[number | null, NodeJS.Signals | null]>, ms: number): Promise<number | null> {
  const timer = new AbortController();
  const timeout = sleep(ms, undefined, { signal: timer.signal }).then(() => {
    throw new Error(`the bench did not exit within ${ms} ms`);
  });
  try {
    const [code] = await Promise.race([exited, timeout]);
    return code;
  } finally {
    timer.abort();
    timeout.catch(() => undefined);
  }
}

describe('npm run bench cleans up after itself', () => {
  // Interrupted during the first warm-up, once the database exists and both transport servers listen.
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    'on %s: its nodes are stopped and its database dropped',
    async (signal, expectedCode) => {
      const run = startBench(SHORT);
      started = { bench: run.child, children: [] };
      await waitFor('the warm-up', () => run.out().includes('warm-up:'));
      const database = run.out().match(/database: (chat_bench_\d+)/)![1]!;
      started.database = database;
      expect(await benchDatabases()).toContain(database);
      const children = descendants(run.child.pid!);
      started.children = children;
      expect(children.filter((c) => c.cmdline.includes('bench/transport-server.ts'))).toHaveLength(2);

      const t0 = Date.now();
      run.child.kill(signal);
      const code = await exitWithin(run.exited, EXIT_BOUND_MS);

      expect(code, run.err()).toBe(expectedCode);
      expect(run.out()).toContain(`${signal}: cleaning up`);
      expect(children.filter((c) => alive(c.pid))).toEqual([]);
      expect(await benchDatabases()).not.toContain(database);
      expect(Date.now() - t0).toBeLessThan(EXIT_BOUND_MS);
    },
    120_000,
  );

  it('on a failure after creating its database: exits 1 and drops it', async () => {
    // Node refuses an unknown option, so the first nodes die before they listen.
    const run = startBench({ ...SHORT, BENCH_NODE_ARGS: '--no-such-node-option' });
    started = { bench: run.child, children: [] };
    const code = await exitWithin(run.exited, 60_000);
    const database = run.out().match(/database: (chat_bench_\d+)/)?.[1];
    started.database = database;

    expect(code, run.err()).toBe(1);
    expect(database).toBeDefined();
    expect(run.err()).toContain('exited with 9 before listening');
    expect(await benchDatabases()).not.toContain(database);
  }, 90_000);
});

describe('npm run bench:scale', () => {
  it('runs its smallest configuration and reports every figure per configuration, then leaves nothing behind', async () => {
    const args = ['--nodes', '2', '--adapters', 'classic', '--placements', 'affine', '--users', '10', '--rate', '20'];
    const child = spawn(process.execPath, ['bench/scale.ts', ...args, '--duration', '2', '--warmup', '0', '--json'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started = { bench: child, children: [] };
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await exitWithin(once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>, 150_000);
    const database = stderr.match(/database: (chat_bench_\d+)/)?.[1];
    started.database = database;

    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as { command: string; machine: string; results: Record<string, unknown>[] };
    expect(report.command).toContain('npm run bench:scale -- --nodes 2');
    expect(report.machine).toMatch(/^\d+ cores/);
    expect(report.results).toHaveLength(1);
    const [r] = report.results as {
      nodes: number;
      adapter: string;
      placement: string;
      messages: number;
      verified: boolean;
      cpuMsPerMessage: { perNode: number[]; total: number };
      redisBytesOutPerMessage: number;
      redisBytesInPerPublishPerNode: number | null;
      publishesPerMessage: number | null;
      fanoutP99Ms: number;
      ackP99Ms: number;
    }[];
    expect(r).toMatchObject({ nodes: 2, adapter: 'classic', placement: 'affine', verified: true });
    expect(r!.messages).toBeGreaterThan(0);
    expect(r!.cpuMsPerMessage.perNode).toHaveLength(2);
    for (const cpu of r!.cpuMsPerMessage.perNode) expect(cpu).toBeGreaterThan(0);
    // Every message crosses Redis at least once (its publish, and its delivery to the subscribers).
    expect(r!.redisBytesOutPerMessage).toBeGreaterThan(64);
    expect(r!.fanoutP99Ms).toBeGreaterThan(0);
    expect(r!.ackP99Ms).toBeGreaterThan(0);
    // From the nodes' chat_redis_* counters: figures when the build has them, else null (printed n/a).
    for (const key of ['redisBytesInPerPublishPerNode', 'publishesPerMessage'] as const) {
      expect(r![key] === null || (typeof r![key] === 'number' && r![key] > 0), key).toBe(true);
    }

    // Its private Redis is stopped and its database dropped.
    const port = Number(stderr.match(/private redis-server at redis:\/\/127\.0\.0\.1:(\d+)/)?.[1]);
    expect(port).toBeGreaterThan(0);
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
    expect(database).toBeDefined();
    expect(await benchDatabases()).not.toContain(database);
  }, 180_000);
});
