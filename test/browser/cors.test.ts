// The REST API called with fetch and a Bearer token from pages of other origins, in real headless Chromium: a page
// whose origin is in CORS_ORIGINS calls every kind of route (its preflights pass, it reads the answers, errors and
// Retry-After included); a page of a foreign origin is refused by the browser itself, before its call is sent.
// The headers themselves, in plain HTTP: test/hostile/cors.test.ts.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { launchChromium } from './helpers.ts';

interface Site {
  origin: string;
  server: Server;
}

/** A site on another loopback port: one blank page, from which the test runs fetch as the site's own script would. */
async function startSite(): Promise<Site> {
  const server = createServer((_req, res) => {
    res
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      .end('<!doctype html><title>site</title><link rel="icon" href="data:,">');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

let allowed: Site;
let foreign: Site;
let cluster: Cluster;
let api: string;
let browser: Browser;

beforeAll(async () => {
  [allowed, foreign] = await Promise.all([startSite(), startSite()]);
  cluster = await startCluster({
    nodes: 1,
    env: { ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '1', CORS_ORIGINS: allowed.origin, SEND_RATE_LIMIT: '3', SEND_RATE_WINDOW_S: '60' },
  });
  api = cluster.nodes[0]!.url;
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await cluster?.close();
  for (const site of [allowed, foreign]) {
    site?.server.closeAllConnections();
    site?.server.close();
  }
});

/** A fresh page of `site`, with the messages Chromium writes to its console. */
async function open(site: Site): Promise<{ page: Page; console: string[] }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const console: string[] = [];
  page.on('console', (message) => console.push(message.text()));
  await page.goto(`${site.origin}/`);
  return { page, console };
}

it('a page of a listed origin calls the API with a Bearer token: reads, writes, errors and Retry-After', async () => {
  const user = cluster.user('page');
  const { page } = await open(allowed);
  const seen = await page.evaluate(
    async ({ api, token }) => {
      const auth = { authorization: `Bearer ${token}` };
      const json = { ...auth, 'content-type': 'application/json' };
      const answer = async (res: Response) => ({ status: res.status, body: res.status === 204 ? null : await res.json() });
      const list = await answer(await fetch(`${api}/api/conversations`, { headers: auth }));
      const created = await answer(
        await fetch(`${api}/api/conversations`, { method: 'POST', headers: json, body: '{"title":"from a page"}' }),
      );
      const id = created.body.conversation.id;
      const renamed = await answer(
        await fetch(`${api}/api/conversations/${id}`, { method: 'PATCH', headers: json, body: '{"title":"renamed"}' }),
      );
      const post = () =>
        fetch(`${api}/api/conversations/${id}/messages`, {
          method: 'POST',
          headers: { ...json, 'idempotency-key': 'page-1' },
          body: '{"content":"hello"}',
        });
      const sent = await answer(await post());
      const repeated = await answer(await post());
      const chat = await answer(
        await fetch(`${api}/api/chat`, { method: 'POST', headers: json, body: JSON.stringify({ message: 'hi', conversation_id: id }) }),
      );
      const unauthorized = await answer(await fetch(`${api}/api/conversations`, { headers: { authorization: 'Bearer nonsense' } }));
      // The third send of the minute passes, the fourth is refused: the page reads how long to wait.
      let limited: { status: number; retryAfter: string | null } | undefined;
      for (let i = 0; i < 3 && !limited; i++) {
        const res = await fetch(`${api}/api/conversations/${id}/messages`, {
          method: 'POST',
          headers: json,
          body: `{"content":"more ${i}"}`,
        });
        if (res.status === 429) limited = { status: res.status, retryAfter: res.headers.get('retry-after') };
      }
      const erased = await fetch(`${api}/api/me`, { method: 'DELETE', headers: auth });
      return { list, created, renamed, sent, repeated, chat, unauthorized, limited, erased: erased.status };
    },
    { api, token: cluster.tokenFor(user) },
  );
  expect(seen.list).toEqual({ status: 200, body: { conversations: [], nextCursor: null } });
  expect(seen.created).toMatchObject({ status: 201, body: { conversation: { title: 'from a page' } } });
  expect(seen.renamed).toMatchObject({ status: 200, body: { conversation: { title: 'renamed' } } });
  expect(seen.sent).toMatchObject({ status: 201, body: { message: { content: 'hello', clientMessageId: 'page-1' } } });
  expect(seen.repeated).toMatchObject({ status: 200, body: { message: { id: seen.sent.body.message.id } } });
  expect(seen.chat).toEqual({ status: 200, body: { response: 'Echo: hi', conversation_id: seen.created.body.conversation.id } });
  expect(seen.unauthorized).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED' } } });
  expect(seen.limited?.status).toBe(429);
  expect(Number(seen.limited?.retryAfter)).toBeGreaterThan(0);
  expect(seen.erased).toBe(204);
});

it("the listed page's call with credentials: 'include' is refused: the API takes tokens, not cookies", async () => {
  const { page } = await open(allowed);
  const outcome = await page.evaluate(
    async ({ api, token }) =>
      fetch(`${api}/api/conversations`, { headers: { authorization: `Bearer ${token}` }, credentials: 'include' }).then(
        (res) => `answered ${res.status}`,
        (err: Error) => `${err.name}: ${err.message}`,
      ),
    { api, token: cluster.tokenFor(cluster.user('cookies')) },
  );
  expect(outcome).toBe('TypeError: Failed to fetch');
});

it('a page of a foreign origin is refused by the browser: nothing is read, and its write is never sent', async () => {
  const user = cluster.user('foreign');
  const { page, console } = await open(foreign);
  const outcomes = await page.evaluate(
    async ({ api, token }) => {
      const attempt = (path: string, init: RequestInit) =>
        fetch(`${api}${path}`, init).then(
          (res) => `answered ${res.status}`,
          (err: Error) => `${err.name}: ${err.message}`,
        );
      const auth = { authorization: `Bearer ${token}` };
      return [
        await attempt('/api/conversations', { headers: auth }),
        await attempt('/api/conversations', {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: '{"title":"foreign"}',
        }),
      ];
    },
    { api, token: cluster.tokenFor(user) },
  );
  expect(outcomes).toEqual(['TypeError: Failed to fetch', 'TypeError: Failed to fetch']);
  expect(console.join('\n')).toMatch(/blocked by CORS policy/);
  // The preflight failed, so the POST never reached the gateway: the user has no conversation.
  const list = await fetch(`${api}/api/conversations`, { headers: { authorization: `Bearer ${cluster.tokenFor(user)}` } });
  expect(await list.json()).toEqual({ conversations: [], nextCursor: null });
});
