// Retention: conversations idle for RETENTION_DAYS are deleted with their messages, in batches, by one node at a
// time, and every open tab of their owners hears of it; `npm run retention` previews and runs the same sweep.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, createConversation, postMessage } from '../helpers/api.ts';
import { eventually, startCluster, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectTab } from '../helpers/sockets.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({
    nodes: 2,
    env: { ASSISTANT: 'none', RETENTION_DAYS: '90', RETENTION_INTERVAL_MS: '1000', RETENTION_BATCH: '2' },
  });
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

const age = (ids: string[], days: number) =>
  cluster.db.query(`update conversations set updated_at = now() - make_interval(days => $2) where id = any($1)`, [ids, days]);

const deletedMetric = async () => {
  let total = 0;
  for (const node of cluster.nodes) {
    const text = await (await fetch(`${node.url}/metrics`)).text();
    total += Number(text.match(/^chat_retention_deleted_total(?:\{[^}]*\})? (\d+)/m)?.[1] ?? 0);
  }
  return total;
};

describe('the retention sweep on the nodes', () => {
  it("deletes the conversations idle for more than 90 days, in batches, and tells their owners' tabs on every node", async () => {
    const alice = cluster.user('alice');
    const bob = cluster.user('bob');
    const [a, b] = cluster.nodes;
    const aliceApi = api(a!.url, cluster.tokenFor(alice));
    const bobApi = api(b!.url, cluster.tokenFor(bob));
    const old = [
      await createConversation(aliceApi, 'old 1'),
      await createConversation(aliceApi, 'old 2'),
      await createConversation(bobApi, 'old 3'),
    ];
    for (const c of old.slice(0, 2)) await postMessage(aliceApi, c.id, 'gone with it', `m-${c.id}`);
    const recent = [await createConversation(aliceApi, 'recent'), await createConversation(bobApi, 'just under 90 days')];
    const tabs = [
      await connectTab(a!.url, cluster.tokenFor(alice)),
      await connectTab(b!.url, cluster.tokenFor(alice)),
      await connectTab(a!.url, cluster.tokenFor(bob)),
    ];
    const before = await deletedMetric();
    await age(
      old.map((c) => c.id),
      91,
    );
    await age([recent[1]!.id], 89);

    for (const tab of tabs.slice(0, 2)) {
      for (const c of old.slice(0, 2))
        await tab.waitFor('conversation:deleted', (p: { conversationId: string }) => p.conversationId === c.id);
    }
    await tabs[2]!.waitFor('conversation:deleted', (p: { conversationId: string }) => p.conversationId === old[2]!.id);
    const left = await cluster.db.query<{ id: string }>('select id from conversations where id = any($1) order by id', [
      [...old, ...recent].map((c) => c.id),
    ]);
    expect(left.map((r) => r.id)).toEqual(recent.map((c) => c.id).sort());
    expect(await cluster.db.query('select id from messages where conversation_id = any($1)', [old.map((c) => c.id)])).toEqual([]);
    await eventually(async () => ((await deletedMetric()) - before === 3 ? true : undefined), 'the metric to count the three');
  });

  it('finds them through an index on updated_at, not by reading the whole table', async () => {
    // One connection for the setting and the plan. A table this small would be read whole anyway; what matters is
    // that the sweep's query can use the index when the table is large.
    const client = new pg.Client({ connectionString: cluster.db.url });
    await client.connect();
    try {
      await client.query('set enable_seqscan = off');
      const plan = await client.query<{ 'QUERY PLAN': string }>(
        "explain select id from conversations where updated_at < now() - interval '90 days' order by updated_at limit 200",
      );
      expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('conversations_updated_at_index');
    } finally {
      await client.end();
    }
  });
});

describe('npm run retention', () => {
  const run = (args: string[]) =>
    spawnSync(process.execPath, ['src/retention.ts', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, DATABASE_URL: cluster.db.url, LOG_LEVEL: 'silent' },
      encoding: 'utf8',
    });

  it('--dry-run lists what would go and deletes nothing; without it, deletes and exits', async () => {
    const user = cluster.user('cli');
    const c = await createConversation(api(cluster.nodes[0]!.url, cluster.tokenFor(user)), 'for the cli');
    // 60 days: past the command's 30, short of the nodes' own 90 (their sweep must not take it first).
    await age([c.id], 60);
    const idle = Number(
      (await cluster.db.query<{ n: string }>("select count(*) as n from conversations where updated_at < now() - interval '30 days'"))[0]!
        .n,
    );
    const preview = run(['--dry-run', '--days', '30']);
    expect(preview.status, preview.stderr).toBe(0);
    expect(preview.stdout).toMatch(new RegExp(`^${idle} conversation\\(s\\) idle for more than 30 days would be deleted`));
    expect(preview.stdout).toContain(c.id);
    expect(await cluster.db.query('select id from conversations where id = $1', [c.id])).toHaveLength(1);
    const real = run(['--days', '30']);
    expect(real.status, real.stderr).toBe(0);
    expect(await cluster.db.query('select id from conversations where id = $1', [c.id])).toEqual([]);
    expect(run(['--days', 'zero']).status).toBe(2);
  });
});
