// The load tester's convergence verdict (--verify converged) against a real two-node cluster (PostgreSQL + Redis,
// one node in this process, one in a child process): a run during which the child node is SIGKILLed and started
// again on the same port ends clean (every observer tab converged on storage, nothing lost or stored twice), and a
// row changed behind the gateway's back makes the verdict fail with that difference named. The comparison itself
// is tested on fabricated views.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../bench/loadtest/cli.ts';
import { compareList, compareMessages } from '../../bench/loadtest/converge.ts';
import { formatTable, type LoadReport } from '../../bench/loadtest/report.ts';
import { runLoad } from '../../bench/loadtest/run.ts';
import { verify, type SentMessage, type StoredMessage } from '../../bench/loadtest/verify.ts';
import type { ConversationDto, MessageDto } from '../../src/shared/events.ts';
import { CLUSTER_SECRET, REDIS_URL, startCluster, testRedisPrefix, type Cluster } from '../helpers/cluster.ts';
import { freePort, startNodeProcess, type NodeProcess } from './node-process.ts';

let cluster: Cluster;
let victimPort: number;
let victim: NodeProcess | undefined;
let reportDir: string;

// Echo replies that stream for a few hundred ms, so a kill lands mid-reply; a dead node's reply is swept within ~3 s.
const NODE_ENV = { ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '25', REPLY_STALE_MS: '2000' };

const startVictim = async () => {
  victim = await startNodeProcess(
    {
      ...NODE_ENV,
      DATABASE_URL: cluster.db.url,
      REDIS_URL,
      REDIS_PREFIX: testRedisPrefix(),
      JWT_SECRET: CLUSTER_SECRET,
      NODE_ID: 'victim',
      SEND_RATE_LIMIT: '10000',
      SEND_RATE_WINDOW_S: '60',
      DB_POOL_MAX: '4',
    },
    victimPort,
  );
  return victim;
};

beforeAll(async () => {
  cluster = await startCluster({ nodes: 1, env: NODE_ENV });
  victimPort = await freePort();
  await startVictim();
  reportDir = mkdtempSync(join(tmpdir(), 'loadtest-converged-'));
});

afterAll(async () => {
  await victim?.kill();
  await cluster?.close();
  if (reportDir) rmSync(reportDir, { recursive: true, force: true });
});

const urls = () => [cluster.nodes[0]!.url, `http://127.0.0.1:${victimPort}`];

describe('--verify converged against two nodes', () => {
  it('judges a run during which a node is SIGKILLed and restarted clean: every observer tab converged, nothing lost or duplicated', async () => {
    let restarted: Promise<unknown> | undefined;
    let killedPid: number | undefined;
    const report = await runLoad(
      {
        urls: urls(),
        secret: CLUSTER_SECRET,
        users: 6,
        tabs: 2,
        rate: 40,
        rampS: 0.5,
        durationS: 7,
        drainTimeoutS: 10,
        verify: 'converged',
        observers: 2,
        convergeTimeoutS: 25,
        quiet: true,
        reportDir: null,
      },
      {
        onPhase: (phase) => {
          if (phase !== 'send') return;
          // 2 s into the sending the node dies mid-traffic; 1.5 s later it is back on its port.
          restarted = (async () => {
            await new Promise((r) => setTimeout(r, 2000));
            killedPid = victim!.pid;
            await victim!.kill('SIGKILL');
            await new Promise((r) => setTimeout(r, 1500));
            await startVictim();
          })();
        },
      },
    );
    await restarted;

    const v = report.verification;
    const c = report.convergence!;
    expect(killedPid).toBeDefined();
    expect(v.problems).toEqual([]);
    expect(v.ok).toBe(true);
    expect(report.exitCode).toBe(0);
    expect(c.observerTabs).toBe(12);
    expect(c.converged).toBe(12);
    expect(c.notConverged).toBe(0);
    expect(c.timedOut).toBe(false);
    expect(c.afterLoadMs!.median).toBeLessThanOrEqual(c.afterLoadMs!.max);
    // The fault was real: tabs and observers on the killed node lost their connection and came back.
    expect(report.connections.disconnects).toBeGreaterThan(0);
    // Live receipts were lost while they were away (the default receipts mode would fail this run); not judged here.
    expect(v.checked.liveReceiptsMissed).toBeGreaterThan(0);
    expect(c.disconnects).toBeGreaterThanOrEqual(6);
    expect(c.reconnects).toBeGreaterThanOrEqual(6);
    // Nothing acknowledged lost or stored twice; the replies (streamed by the echo assistant) all ended.
    expect(v.checked.acked).toBeGreaterThan(100);
    expect(v.problemCounts['stored-missing'] ?? 0).toBe(0);
    expect(v.problemCounts['stored-duplicate'] ?? 0).toBe(0);
    expect(v.checked.repliesByStatus.complete).toBeGreaterThan(0);
    expect(v.checked.repliesByStatus.streaming ?? 0).toBe(0);
    // A reply its node was streaming when it died is ended as interrupted by the surviving node, never left open.
    for (const code of Object.keys(v.checked.replyFailures)) expect(code).toBe('INTERRUPTED');
  });

  it('fails when storage and the tabs disagree (a row changed behind the gateway), naming the difference; the CLI exits 1', async () => {
    let changed: { id: string; seq: string } | undefined;
    const out: string[] = [];
    const code = await main(
      [
        '--url',
        urls().join(','),
        '--secret',
        CLUSTER_SECRET,
        '--users',
        '4',
        '--tabs',
        '2',
        '--rate',
        '20',
        '--ramp',
        '0.5',
        '--duration',
        '2s',
        '--verify',
        'converged',
        '--observers',
        '2',
        '--converge-timeout',
        '3s',
        '--quiet',
        '--json-only',
        '--report-dir',
        reportDir,
      ],
      { out: (t) => out.push(t), err: (t) => out.push(t) },
      {
        beforeVerify: async (ctx) => {
          // The second user message of the first user: what the tabs hold no longer matches what is stored.
          const rows = await cluster.db.query<{ id: string; seq: string }>(
            `update messages set content = 'changed behind the gateway' where id = (
               select id from messages where user_id = $1 and role = 'user' order by seq offset 1 limit 1
             ) returning id, seq`,
            [ctx.users[0]!.userId],
          );
          changed = rows[0];
        },
      },
    );

    expect(changed).toBeDefined();
    const report = JSON.parse(out.join('')) as LoadReport;
    expect(code).toBe(1);
    expect(report.exitCode).toBe(1);
    const v = report.verification;
    // Both observers of that user disagree with storage, and only them; storage itself is whole.
    expect(v.problemCounts).toEqual({ 'not-converged': 2 });
    expect(report.convergence).toMatchObject({ observerTabs: 8, converged: 6, notConverged: 2, timedOut: true });
    for (const p of v.problems) {
      expect(p.userId).toBe(`${report.options.userPrefix}-0`);
      expect(p.detail).toContain(`seq ${changed!.seq} (user, complete): content differs at character 0`);
      expect(p.detail).toContain('"changed behind the gateway"');
    }

    // The table says it too.
    const table = formatTable(report);
    expect(table).toContain('verdict      NOT CONVERGED: 6 of 8 observer tabs (2 per user) match storage, 2 do not');
    expect(table).toMatch(/not-converged\s+\S+-0 observer [01]: observer [01] \(http/);
  });
});

describe('comparing a view with storage', () => {
  const message = (seq: number, over: Partial<MessageDto> = {}): MessageDto => ({
    id: `m-${seq}`,
    conversationId: 'c',
    seq,
    role: seq % 2 ? 'user' : 'assistant',
    status: 'complete',
    content: `text ${seq}`,
    metadata: null,
    clientMessageId: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    ...over,
  });
  const stored = (m: MessageDto): StoredMessage => ({
    id: m.id,
    seq: m.seq,
    role: m.role,
    status: m.status,
    clientMessageId: m.clientMessageId,
    content: m.content,
  });

  it('finds nothing when the view holds exactly what is stored', () => {
    const view = [1, 2, 3].map((s) => message(s));
    expect(compareMessages(view, view.map(stored))).toEqual([]);
  });

  it('names a missing message, an extra one, another id at a seq, a status and a content that differ', () => {
    const truth = [1, 2, 3, 4].map((s) => message(s)).map(stored);
    const view = [
      message(1, { id: 'other' }),
      message(2, { status: 'streaming', content: 'text' }),
      message(3, { content: 'text 3!' }),
      message(5),
    ];
    expect(compareMessages(view, truth)).toEqual([
      'seq 1: the tab holds other, storage m-1',
      'seq 2 (assistant): status streaming in the tab, complete stored',
      'seq 2 (assistant, complete): content differs at character 4: the tab has 4 characters "text", storage 6 "text 2"',
      'seq 3 (user, complete): content differs at character 6: the tab has 7 characters "text 3!", storage 6 "text 3"',
      'seq 4 (assistant, complete): stored, missing from the tab',
      'seq 5 (user, complete): in the tab, not stored',
    ]);
  });

  it('compares the conversation list by id, lastSeq and title', () => {
    const conv = (id: string, lastSeq: number, title: string | null = null): ConversationDto => ({
      id,
      title,
      lastSeq,
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
    });
    expect(compareList([conv('a', 3)], [conv('a', 3)])).toEqual([]);
    expect(compareList([conv('a', 2), conv('x', 1)], [conv('a', 3, 'T'), conv('b', 1)])).toEqual([
      'conversation list: a has lastSeq 2 in the tab, 3 stored',
      'conversation list: a has title null in the tab, "T" stored',
      'conversation list: b stored, missing from the tab',
      'conversation list: x in the tab, not stored',
    ]);
  });

  it('in converged mode, counts lost live receipts without failing, and fails on a tab that differs and a reply left streaming', () => {
    const users = [{ userId: 'u-0', conversationId: 'c-0' }];
    const sent: SentMessage[] = [
      { clientMessageId: 'cm-1', user: 0, userId: 'u-0', tab: 0, outcome: 'acked', messageId: 'm-1', seq: 1, receipts: [1, 0] },
    ];
    const conversation = (status: string) => ({
      conversationId: 'c-0',
      lastSeq: 2,
      messages: [
        { id: 'm-1', seq: 1, role: 'user', status: 'complete', clientMessageId: 'cm-1' },
        {
          id: 'm-2',
          seq: 2,
          role: 'assistant',
          status,
          clientMessageId: null,
          replyToId: 'm-1',
          ...(status === 'failed' ? { errorCode: 'INTERRUPTED' } : {}),
        },
      ],
    });
    const tab = (differences: string[]) => ({ user: 0, observer: 1, url: 'http://n2', differences, differenceCount: differences.length });

    const clean = verify({
      tabs: 2,
      users,
      sent,
      stored: [conversation('failed')],
      assistant: true,
      mode: 'converged',
      observerTabs: [tab([])],
    });
    expect(clean.problems).toEqual([]);
    expect(clean.checked).toMatchObject({
      liveReceiptsMissed: 1,
      observerTabsConverged: 1,
      repliesByStatus: { failed: 1 },
      replyFailures: { INTERRUPTED: 1 },
    });
    // The same observations fail the receipts mode: the second tab never received the message live.
    expect(verify({ tabs: 2, users, sent, stored: [conversation('failed')], assistant: false }).problemCounts).toEqual({
      'receipt-missing': 1,
    });

    const bad = verify({
      tabs: 2,
      users,
      sent,
      stored: [conversation('streaming')],
      assistant: true,
      mode: 'converged',
      observerTabs: [tab(['seq 2 (assistant): status complete in the tab, streaming stored'])],
    });
    expect(bad.problemCounts).toEqual({ 'reply-not-final': 1, 'not-converged': 1 });
    expect(bad.problems.find((p) => p.kind === 'not-converged')).toMatchObject({
      userId: 'u-0',
      observer: 1,
      detail: 'observer 1 (http://n2), 1 difference(s): seq 2 (assistant): status complete in the tab, streaming stored',
    });
  });
});

describe('command line of the converged mode', () => {
  it('refuses observers without --verify converged, and --verify converged without storage', async () => {
    const err: string[] = [];
    const io = { out: () => {}, err: (t: string) => err.push(t), env: {} };
    expect(await main(['--secret', 'x', '--observers', '2'], io)).toBe(2);
    expect(err.join('')).toContain('--verify converged');
    expect(await main(['--secret', 'x', '--verify', 'converged', '--skip-storage'], io)).toBe(2);
    expect(err.join('')).toContain('--skip-storage');
    expect(await main(['--secret', 'x', '--verify', 'eventually'], io)).toBe(2);
  });
});
