// The load tester against a real two-node cluster (PostgreSQL + Redis): a short clean run verifies, a planted loss
// (a stored message deleted through SQL between the run and the verification) fails it with the message named and
// the CLI exiting 1, fabricated observations exercise the receipt checks, and usage errors exit 2.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../bench/loadtest/cli.ts';
import type { LoadReport } from '../../bench/loadtest/report.ts';
import { runLoad } from '../../bench/loadtest/run.ts';
import { Schedule } from '../../bench/loadtest/schedule.ts';
import { verify, type SentMessage } from '../../bench/loadtest/verify.ts';
import { CLUSTER_SECRET, startCluster, type Cluster } from '../helpers/cluster.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

let cluster: Cluster;
let reportDir: string;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 2, env: { ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '0' } });
  reportDir = mkdtempSync(join(tmpdir(), 'loadtest-'));
});

afterAll(async () => {
  await cluster?.close();
  if (reportDir) rmSync(reportDir, { recursive: true, force: true });
});

/** A few seconds of light load: 6 users × 2 tabs (each user's tabs on both nodes), 30 msg/s. */
const light = () => ({
  urls: cluster.nodes.map((n) => n.url),
  secret: CLUSTER_SECRET,
  users: 6,
  tabs: 2,
  rate: 30,
  rampS: 0.5,
  durationS: 2,
  drainTimeoutS: 10,
  quiet: true,
});

describe('load tester against two nodes', () => {
  it('verifies a clean run, with every acked message received once per tab, stored once, and answered by the assistant', async () => {
    const report = await runLoad({ ...light(), assistant: true, reportDir });

    expect(report.verification.problems).toEqual([]);
    expect(report.verification.ok).toBe(true);
    expect(report.exitCode).toBe(0);
    const c = report.counts;
    expect(c.scheduled).toBeGreaterThan(30);
    expect(c.acked).toBe(c.scheduled);
    expect(c.receipts).toBe(c.acked * 2);
    expect(c.duplicateReceipts).toBe(0);
    expect(report.verification.checked.conversations).toBe(6);
    // Two messages per acked send are stored: the user's and the assistant's reply.
    expect(report.verification.checked.storedMessages).toBe(c.acked * 2);
    expect(report.verification.checked.replies).toBe(c.acked);
    expect(report.latency.ack.count).toBe(c.acked);
    expect(report.latency.fanout.count).toBe(c.acked); // one other tab per message
    expect(report.latency.assistantComplete.count).toBe(c.acked);
    expect(report.latency.assistantFirstDelta.p50Ms).toBeLessThanOrEqual(report.latency.assistantComplete.p99Ms);
    // The nodes let no tab go (no 'io server disconnect'); a connection a busy machine dropped (a ping missed) came
    // back, and every check above holds through it: the receipts are counted once per tab, catch-up included.
    expect(report.connections.tabs).toBe(12);
    expect(report.connections.disconnectReasons['io server disconnect'] ?? 0).toBe(0);
    expect(report.connections.reconnects).toBeGreaterThanOrEqual(report.connections.disconnects);

    // The reports on disk: the JSON is the returned report; the HTML is self-contained (no external resource).
    const [jsonFile, htmlFile] = report.files;
    expect(JSON.parse(readFileSync(jsonFile!, 'utf8')).runId).toBe(report.runId);
    const html = readFileSync(htmlFile!, 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('VERIFIED');
    expect(html).not.toMatch(/<script|<link|src="http|href="http/);
    expect(JSON.stringify(report)).not.toContain(CLUSTER_SECRET);
  });

  it('finds a stored message deleted before the verification; the CLI names it and exits 1', async () => {
    const o = light();
    let deleted: { client_message_id: string; seq: string } | undefined;
    const out: string[] = [];
    const code = await main(
      [
        '--url',
        o.urls.join(','),
        '--secret',
        o.secret,
        '--users',
        '4',
        '--tabs',
        '2',
        '--rate',
        '20',
        '--ramp',
        '0.5',
        '--duration',
        '2',
        '--quiet',
        '--report-dir',
        reportDir,
      ],
      { out: (t) => out.push(t), err: (t) => out.push(t) },
      {
        beforeVerify: async (ctx) => {
          // The second message of the first user's conversation: a loss in the middle also leaves a seq gap.
          const rows = await cluster.db.query<{ client_message_id: string; seq: string }>(
            `delete from messages where id = (
               select id from messages where user_id = $1 and role = 'user' order by seq offset 1 limit 1
             ) returning client_message_id, seq`,
            [ctx.users[0]!.userId],
          );
          deleted = rows[0];
        },
      },
    );

    expect(deleted).toBeDefined();
    const text = out.join('');
    expect(code, text).toBe(1);
    expect(text).toContain('FAILED');
    expect(text).toMatch(new RegExp(`stored-missing\\s+\\S+ ${deleted!.client_message_id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    expect(text).toContain(`seq ${deleted!.seq} missing`);

    const jsonFile = text.match(/(\S+loadtest-\S+\.json)/)![1]!;
    const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as LoadReport;
    expect(report.exitCode).toBe(1);
    expect(report.verification.problemCounts).toEqual({ 'stored-missing': 1, 'seq-gap': 1 });
    expect(report.verification.problems.find((p) => p.kind === 'stored-missing')?.clientMessageId).toBe(deleted!.client_message_id);
    // Live delivery itself was fine: only the storage check failed.
    expect(report.verification.problems.filter((p) => p.kind.startsWith('receipt'))).toEqual([]);
  });
});

describe('verify on fabricated observations', () => {
  const users = [{ userId: 'u-0', conversationId: 'c-0' }];
  const sent = (clientMessageId: string, seq: number, receipts: number[], outcome: SentMessage['outcome'] = 'acked'): SentMessage => ({
    clientMessageId,
    user: 0,
    userId: 'u-0',
    tab: 0,
    outcome,
    messageId: `m-${seq}`,
    seq,
    receipts,
  });
  const stored = (n: number) => ({
    conversationId: 'c-0',
    lastSeq: n,
    messages: Array.from({ length: n }, (_, i) => ({
      id: `m-${i + 1}`,
      seq: i + 1,
      role: 'user',
      status: 'complete',
      clientMessageId: `cm-${i + 1}`,
    })),
  });

  it('passes when every acked message was received once by every tab and stored once', () => {
    const v = verify({
      tabs: 3,
      users,
      sent: [sent('cm-1', 1, [1, 1, 1]), sent('cm-2', 2, [1, 1, 1])],
      stored: [stored(2)],
      assistant: false,
    });
    expect(v.ok).toBe(true);
    expect(v.checked.receiptsExpected).toBe(6);
  });

  it('reports a missing receipt (naming the tab that lost its connection), a duplicate one, and a refused send that was stored', () => {
    const v = verify({
      tabs: 3,
      users,
      sent: [
        sent('cm-1', 1, [1, 1, 0]),
        sent('cm-2', 2, [1, 2, 1]),
        { ...sent('cm-3', 3, [0, 0, 0], 'refused'), errorCode: 'RATE_LIMITED' },
      ],
      stored: [stored(3)],
      assistant: false,
      disconnectedTabs: ['0:2'],
    });
    expect(v.ok).toBe(false);
    expect(v.problemCounts).toEqual({ 'receipt-missing': 1, 'receipt-duplicate': 1, 'stored-despite-refusal': 1 });
    const missing = v.problems.find((p) => p.kind === 'receipt-missing')!;
    expect(missing).toMatchObject({ clientMessageId: 'cm-1', tab: 2 });
    expect(missing.detail).toContain('lost its connection');
    expect(v.problems.find((p) => p.kind === 'receipt-duplicate')).toMatchObject({ clientMessageId: 'cm-2', tab: 1 });
  });

  it('reports a message stored twice, one stored under another seq, and a stored message nobody sent', () => {
    const s = stored(3);
    s.messages[1]!.clientMessageId = 'cm-1'; // cm-1 twice, cm-2 never
    s.messages.push({ id: 'm-x', seq: 4, role: 'user', status: 'complete', clientMessageId: 'someone-else' });
    s.lastSeq = 4;
    const v = verify({
      tabs: 1,
      users,
      sent: [sent('cm-1', 1, [1]), sent('cm-2', 2, [1]), sent('cm-3', 3, [1])],
      stored: [s],
      assistant: false,
    });
    expect(v.problemCounts).toEqual({ 'stored-duplicate': 1, 'stored-missing': 1, 'stored-unexpected': 1 });
  });

  it('fails a run in which nothing was acknowledged', () => {
    const v = verify({
      tabs: 1,
      users,
      sent: [{ ...sent('cm-1', 1, [0], 'unknown'), errorCode: 'TIMEOUT' }],
      stored: [stored(0)],
      assistant: false,
    });
    expect(v.problemCounts).toEqual({ 'nothing-acked': 1 });
  });
});

describe('open-loop schedule', () => {
  it('ramps linearly, then holds the rate; due times are the inverse of the count', () => {
    const s = new Schedule(100, 2, 10);
    expect(s.total).toBe(900); // 100 during the ramp (half of 2 s × 100/s), then 8 s × 100/s
    expect(s.rateAt(1)).toBe(50);
    expect(s.rateAt(5)).toBe(100);
    for (const k of [1, 50, 99, 100, 101, 500, 899]) {
      expect(s.countAt(s.dueAt(k))).toBeCloseTo(k, 6);
      expect(s.dueAt(k)).toBeGreaterThan(s.dueAt(k - 1));
    }
    expect(new Schedule(100, 0, 1).dueAt(50)).toBeCloseTo(0.5, 9);
  });
});

describe('command line', () => {
  it('prints its help and exits 0', async () => {
    const out: string[] = [];
    expect(await main(['--help'], { out: (t) => out.push(t), err: (t) => out.push(t) })).toBe(0);
    expect(out.join('')).toContain('Usage: npm run loadtest');
  });

  it('exits 2 on a usage error, a missing secret and an unreachable node', async () => {
    const err: string[] = [];
    const io = { out: () => {}, err: (t: string) => err.push(t), env: {} };
    expect(await main(['--rate', 'lots', '--secret', 'x'], io)).toBe(2);
    expect(await main(['--url', 'http://127.0.0.1:3000'], io)).toBe(2);
    expect(err.join('')).toContain('secret');
    expect(await main(['--url', 'http://127.0.0.1:1', '--secret', 'x', '--quiet', '--report-dir', reportDir], io)).toBe(2);
    expect(err.join('')).toContain('not reachable');
  });

  it('exits 2 from the real process on a usage error', () => {
    const run = spawnSync(process.execPath, ['bench/loadtest/cli.ts', '--users', '0'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
    });
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).toContain('users');
  });
});
