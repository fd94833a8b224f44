// REST CORS as a browser meets it, in plain HTTP: the preflight (OPTIONS, no token) of a listed page origin is
// answered before authentication with exactly the headers a Bearer call needs; the answers to its calls, errors
// included, name it and expose Retry-After; an origin not listed, or any origin with CORS_ORIGINS unset, gets no
// Access-Control-* header at all and its preflight is refused. The same in real Chromium: test/browser/cors.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.ts';

const ALLOWED = 'http://app.example';
const ALSO_ALLOWED = 'https://admin.example:8443';
const FOREIGN = 'http://evil.example';

let cluster: Cluster;
/** CORS_ORIGINS=ALLOWED,ALSO_ALLOWED; two sends per minute, to meet a 429. */
let listed: ClusterNode;
/** CORS_ORIGINS unset. */
let unset: ClusterNode;

beforeAll(async () => {
  cluster = await startCluster({
    nodes: 1,
    env: { ASSISTANT: 'none', CORS_ORIGINS: `${ALLOWED}, ${ALSO_ALLOWED}`, SEND_RATE_LIMIT: '2', SEND_RATE_WINDOW_S: '60' },
  });
  listed = cluster.nodes[0]!;
  unset = await cluster.addNode({ CORS_ORIGINS: undefined });
});
afterAll(async () => {
  await cluster?.close();
});

function preflight(
  node: ClusterNode,
  path: string,
  origin: string,
  method = 'POST',
  headers = 'authorization,content-type,idempotency-key',
) {
  return fetch(`${node.url}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers },
  });
}

function call(node: ClusterNode, method: string, path: string, o: { origin?: string; token?: string; body?: string } = {}) {
  const headers: Record<string, string> = {};
  if (o.origin) headers.origin = o.origin;
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${node.url}${path}`, { method, headers, body: o.body });
}

/** Every Access-Control-* header of a response. */
const corsHeaders = (res: Response) => [...res.headers.keys()].filter((k) => k.startsWith('access-control-'));

const ROUTES = [
  ['GET', '/api/conversations'],
  ['POST', '/api/conversations/0190d0a4-58c1-7cc3-8f3e-4c2b1a2b3c4d/messages'],
  ['PATCH', '/api/conversations/0190d0a4-58c1-7cc3-8f3e-4c2b1a2b3c4d'],
  ['DELETE', '/api/me'],
  ['POST', '/api/chat'],
] as const;

describe('with CORS_ORIGINS set', () => {
  it.each(ROUTES)(
    "a listed origin's preflight for %s %s is answered 204 before authentication, with what a Bearer call needs",
    async (method, path) => {
      for (const origin of [ALLOWED, ALSO_ALLOWED]) {
        const res = await preflight(listed, path, origin, method);
        expect(res.status).toBe(204);
        expect(res.headers.get('access-control-allow-origin')).toBe(origin);
        expect(res.headers.get('access-control-allow-methods')?.split(',')).toContain(method);
        expect(res.headers.get('access-control-allow-headers')?.toLowerCase().split(',')).toEqual([
          'authorization',
          'content-type',
          'idempotency-key',
        ]);
        expect(Number(res.headers.get('access-control-max-age'))).toBeGreaterThan(0);
        // Bearer tokens are headers, not cookies: no credentials mode.
        expect(res.headers.get('access-control-allow-credentials')).toBeNull();
        expect(res.headers.get('vary')).toMatch(/origin/i);
        expect(await res.text()).toBe('');
      }
    },
  );

  it('the answers to a listed origin name it and expose Retry-After, errors included (401, 413, 429)', async () => {
    const token = cluster.tokenFor(cluster.user('cors'));
    const ok = await call(listed, 'GET', '/api/conversations', { origin: ALLOWED, token });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(ok.headers.get('access-control-expose-headers')).toBe('Retry-After');
    expect(ok.headers.get('vary')).toMatch(/origin/i);

    const created = await call(listed, 'POST', '/api/conversations', { origin: ALLOWED, token, body: '{}' });
    const { conversation } = await created.json();
    const send = (i: number) =>
      call(listed, 'POST', `/api/conversations/${conversation.id}/messages`, {
        origin: ALLOWED,
        token,
        body: JSON.stringify({ content: `m${i}` }),
      });
    expect([(await send(1)).status, (await send(2)).status]).toEqual([201, 201]);
    const limited = await send(3);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);

    const unauthorized = await call(listed, 'GET', '/api/conversations', { origin: ALLOWED });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('access-control-allow-origin')).toBe(ALLOWED);

    const tooLarge = await call(listed, 'POST', '/api/conversations', {
      origin: ALLOWED,
      token,
      body: JSON.stringify({ title: 'x'.repeat(200_000) }),
    });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.headers.get('access-control-allow-origin')).toBe(ALLOWED);
  });

  it('an origin not listed gets no Access-Control-* header: its preflight is refused 403, its calls are answered without them', async () => {
    for (const origin of [FOREIGN, 'null', `${ALLOWED}:80`, `${ALLOWED}.evil.example`, 'https://app.example']) {
      const res = await preflight(listed, '/api/conversations', origin);
      expect(res.status).toBe(403);
      expect(corsHeaders(res)).toEqual([]);
      expect((await res.json()).error.code).toBe('FORBIDDEN');
    }
    // A browser never lets a foreign page send this (the preflight failed); a client that is not a browser may,
    // and is answered as without an Origin, with nothing a browser would let a page read.
    const token = cluster.tokenFor(cluster.user('cors-foreign'));
    const res = await call(listed, 'GET', '/api/conversations', { origin: FOREIGN, token });
    expect(res.status).toBe(200);
    expect(corsHeaders(res)).toEqual([]);
  });

  it('requests without an Origin (backends) are unchanged: no CORS headers, and OPTIONS is no preflight', async () => {
    const token = cluster.tokenFor(cluster.user('cors-backend'));
    const res = await call(listed, 'GET', '/api/conversations', { token });
    expect(res.status).toBe(200);
    expect(corsHeaders(res)).toEqual([]);
    expect((await call(listed, 'OPTIONS', '/api/conversations')).status).toBe(401);
  });

  it('outside /api nothing changes: the health routes send no CORS headers', async () => {
    const res = await call(listed, 'GET', '/healthz', { origin: ALLOWED });
    expect(res.status).toBe(200);
    expect(corsHeaders(res)).toEqual([]);
  });
});

describe('with CORS_ORIGINS unset', () => {
  it('no origin gets cross-origin access: preflights refused, no Access-Control-* header anywhere', async () => {
    const own = new URL(unset.url).origin;
    for (const origin of [ALLOWED, FOREIGN, own]) {
      const res = await preflight(unset, '/api/conversations', origin);
      expect(res.status).toBe(403);
      expect(corsHeaders(res)).toEqual([]);
    }
    const token = cluster.tokenFor(cluster.user('cors-unset'));
    const res = await call(unset, 'GET', '/api/conversations', { origin: ALLOWED, token });
    expect(res.status).toBe(200);
    expect(corsHeaders(res)).toEqual([]);
  });
});
