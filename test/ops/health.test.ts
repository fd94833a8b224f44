// Operations endpoints: liveness, readiness (and what clients get while the database is away), and metrics.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { api, createConversation, expectError, postMessage } from '../helpers/api.ts';
import { ADMIN_URL, adminQuery, CHECK_APP_NAME, type TestDatabase } from '../helpers/db.ts';
import { gatewayOnFreshDatabase, startGateway, type StartedGateway } from '../helpers/gateway.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { toGatewayError } from '../../src/shared/failures.ts';

let db: TestDatabase;
let gw: StartedGateway;

/** Polls /readyz until it answers `status` (within a generous bound), and returns that answer. */
async function readyzBecomes(url: string, status: number) {
  for (let i = 0; ; i++) {
    const res = await api(url).get('/readyz');
    if (res.status === status || i >= 100) return res;
    await sleep(100);
  }
}

gatewayOnFreshDatabase((started) => ({ db, gateway: gw } = started));

describe('/healthz and /readyz', () => {
  it('/healthz answers 200 without a token', async () => {
    const res = await api(gw.url).get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 with the database check ok', async () => {
    const res = await api(gw.url).get('/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ready', checks: { database: 'ok' } });
  });
});

describe('/metrics', () => {
  it('serves Prometheus text with request and persisted-message counters that count', async () => {
    const client = api(gw.url, gw.tokenFor('metrics-user'));
    const c = await createConversation(client, 'metered');
    await postMessage(client, c.id, 'one');
    await postMessage(client, c.id, 'two');
    const res = await fetch(`${gw.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^# HELP chat_http_requests_total /m);
    expect(text).toMatch(/^# TYPE chat_messages_persisted_total counter$/m);
    const persisted = text.match(/^chat_messages_persisted_total\{[^}]*role="user"[^}]*\} (\d+)$/m);
    expect(Number(persisted?.[1])).toBe(2);
    // Routes are labelled by pattern, never by raw ids.
    expect(text).toMatch(/chat_http_requests_total\{[^}]*route="\/api\/conversations\/:id\/messages"[^}]*status="201"[^}]*\} 2/);
    expect(text).not.toContain(c.id);
  });

  it('labels every route by its full pattern: a router mounted on a path, the list route, served widget files, and 404s', async () => {
    const client = api(gw.url, gw.tokenFor('labels-user'));
    await client.get('/api/conversations');
    await api(gw.url).post('/api/demo/token', { name: 'nobody' }); // 404: no demo with a key configured
    // Each body read to its end: a response is counted when the node has finished sending it, and a bundle left
    // unread could still be on its way when /metrics is read.
    expect((await (await fetch(`${gw.url}/widget/chat-widget.js`)).arrayBuffer()).byteLength).toBeGreaterThan(0);
    await (await fetch(`${gw.url}/no/such/page`)).arrayBuffer();
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const routes = new Set([...text.matchAll(/chat_http_requests_total\{[^}]*route="([^"]*)"/g)].map((m) => m[1]));
    expect(routes).toContain('/api/conversations');
    expect(routes).toContain('/widget/*');
    expect(routes).toContain('/healthz');
    expect(routes).toContain('unmatched');
    // A pattern never loses its mount point.
    for (const route of routes) expect(route === 'unmatched' || route!.startsWith('/')).toBe(true);
    expect(routes).not.toContain('/token');
  });

  it('with METRICS_TOKEN set, refuses /metrics without the token (401) and serves it with the token', async () => {
    const guarded = await startGateway({ DATABASE_URL: db.url, METRICS_TOKEN: 'scrape-secret-123' });
    try {
      expectError(await api(guarded.url).get('/metrics'), 401, 'UNAUTHORIZED');
      expectError(await api(guarded.url, 'wrong-secret-123').get('/metrics'), 401, 'UNAUTHORIZED');
      expectError(await api(guarded.url, 'scrape-secret-12').get('/metrics'), 401, 'UNAUTHORIZED');
      const ok = await fetch(`${guarded.url}/metrics`, { headers: { authorization: 'Bearer scrape-secret-123' } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('chat_http_requests_total');
      // Health endpoints stay open for the orchestrator.
      expect((await api(guarded.url).get('/healthz')).status).toBe(200);
      expect((await api(guarded.url).get('/readyz')).status).toBe(200);
    } finally {
      await guarded.close();
    }
  });
});

describe('while the database is unreachable', () => {
  let proxy: TcpProxy;
  let node: StartedGateway;
  let conversationId: string;

  // A proxied node and a conversation of its own for each test: the recovery test makes its own outage first, so
  // either test runs alone (`-t`).
  beforeEach(async () => {
    const admin = new URL(ADMIN_URL);
    proxy = await startTcpProxy({ host: admin.hostname, port: Number(admin.port || 5432) });
    node = await startGateway({ DATABASE_URL: proxy.wrap(db.url), NODE_ID: 'proxied' });
    conversationId = (await createConversation(api(node.url, node.tokenFor('outage-user')), 'before the outage')).id;
  });

  afterEach(async () => {
    proxy?.restore();
    await node?.close();
    await proxy?.close();
  });

  it('readiness turns 503, and writes and reads answer 503 UNAVAILABLE instead of hanging or 500', async () => {
    const client = api(node.url, node.tokenFor('outage-user'));
    proxy.cut();

    // Readiness answers from the node's own watch of the database, which notices within a ping or two.
    const ready = await readyzBecomes(node.url, 503);
    expect(ready.body).toEqual({ status: 'unavailable', checks: { database: 'unavailable' } });
    // The process is alive: liveness must not fail, or the orchestrator would restart every node at once.
    expect((await api(node.url).get('/healthz')).status).toBe(200);

    const write = await client.post(`/api/conversations/${conversationId}/messages`, {
      content: 'during outage',
      clientMessageId: 'outage-1',
    });
    expectError(write, 503, 'UNAVAILABLE');
    expect(Number(write.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Sends submitted together share a group-commit batch: every one of them must be answered (none may hang,
    // which the test timeout would show) and with UNAVAILABLE.
    const burst = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) =>
        node.gateway.services.messages.append('outage-user', {
          conversationId,
          content: `burst ${i}`,
          clientMessageId: `outage-burst-${i}`,
        }),
      ),
    );
    expect(burst.map((r) => (r.status === 'rejected' ? toGatewayError(r.reason).code : 'stored'))).toEqual(Array(12).fill('UNAVAILABLE'));
    expectError(await client.post('/api/conversations', { title: 'during outage' }), 503, 'UNAVAILABLE');
    expectError(await client.get('/api/conversations'), 503, 'UNAVAILABLE');
    expectError(await client.get(`/api/conversations/${conversationId}/messages`), 503, 'UNAVAILABLE');
  });

  it('recovers by itself when the database is back: ready again, and the retried write is stored once', async () => {
    const client = api(node.url, node.tokenFor('outage-user'));
    proxy.cut();
    expect((await readyzBecomes(node.url, 503)).status).toBe(503);
    const refused = await client.post(`/api/conversations/${conversationId}/messages`, {
      content: 'during outage',
      clientMessageId: 'outage-1',
    });
    expectError(refused, 503, 'UNAVAILABLE');
    proxy.restore();
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await api(node.url).get('/readyz')).status;
      if (status !== 200) await sleep(200);
    }
    expect(status).toBe(200);

    const retry = await client.post(`/api/conversations/${conversationId}/messages`, {
      content: 'during outage',
      clientMessageId: 'outage-1',
    });
    expect(retry.status, retry.text).toBe(201);
    expect(retry.body.message.seq).toBe(1);
    const rows = await db.query<{ seq: string }>('select seq from messages where conversation_id = $1', [conversationId]);
    expect(rows).toEqual([{ seq: '1' }]);
  });
});

describe('after the database cut every connection (a PostgreSQL restart)', () => {
  it('answers 503 UNAVAILABLE or succeeds, never 500, and is soon writing again with nothing lost', async () => {
    const client = api(gw.url, gw.tokenFor('restart-user'));
    const c = await createConversation(client, 'across a restart');
    const killed = await adminQuery(
      `select pg_terminate_backend(pid) as ok from pg_stat_activity where datname = $1 and pid <> pg_backend_pid() and application_name <> $2`,
      [db.name, CHECK_APP_NAME],
    );
    expect(killed.length).toBeGreaterThan(0);

    const statuses: number[] = [];
    for (let i = 0; i < 20 && statuses.at(-1) !== 201; i++) {
      const res = await client.post(`/api/conversations/${c.id}/messages`, { content: 'after restart', clientMessageId: 'restart-1' });
      if (res.status !== 201) expectError(res, 503, 'UNAVAILABLE');
      statuses.push(res.status);
    }
    expect(statuses.at(-1)).toBe(201);
    expect(await db.query('select seq from messages where conversation_id = $1', [c.id])).toEqual([{ seq: '1' }]);
    expect((await api(gw.url).get('/readyz')).status).toBe(200);
  });
});

describe('while PostgreSQL refuses connections to the database (ALLOW_CONNECTIONS false, sessions cut)', () => {
  it('writes and reads answer 503 UNAVAILABLE, as readiness does, and recover when connections are allowed again', async () => {
    const client = api(gw.url, gw.tokenFor('refused-user'));
    const c = await createConversation(client, 'maintenance window');
    await adminQuery(`alter database "${db.name}" allow_connections false`);
    try {
      await adminQuery(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`, [db.name]);
      const ready = await readyzBecomes(gw.url, 503);
      expect(ready.body.checks).toEqual({ database: 'unavailable' });
      // A database that cannot be connected to is unavailable, whatever SQLSTATE the refusal carries.
      const write = await client.post(`/api/conversations/${c.id}/messages`, { content: 'in maintenance', clientMessageId: 'maint-1' });
      expectError(write, 503, 'UNAVAILABLE');
      expectError(await client.get('/api/conversations'), 503, 'UNAVAILABLE');
    } finally {
      await adminQuery(`alter database "${db.name}" allow_connections true`);
    }
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await api(gw.url).get('/readyz')).status;
      if (status !== 200) await sleep(200);
    }
    expect(status).toBe(200);
    const retry = await client.post(`/api/conversations/${c.id}/messages`, { content: 'in maintenance', clientMessageId: 'maint-1' });
    expect(retry.status, retry.text).toBe(201);
  });
});
