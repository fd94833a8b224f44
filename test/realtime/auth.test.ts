// Socket authentication: the handshake (auth.token or Authorization: Bearer), its refusals with err.data.code,
// the per-user socket cap, and the session's end at the token's exp unless auth:refresh moved it.
import jwt from 'jsonwebtoken';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_SECRET, signToken, startCluster, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectError, connectTab, type Tab } from '../helpers/sockets.ts';

let cluster: Cluster;
let A: string;
let B: string;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 2, env: { ASSISTANT: 'none', MAX_SOCKETS_PER_USER: '2' } });
  [A, B] = cluster.nodes.map((n) => n.url) as [string, string];
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

const expOf = (token: string) => (jwt.decode(token) as { exp: number }).exp;
/** A token for `sub` that ends at `expS` (seconds since the epoch). */
const tokenUntil = (sub: string, expS: number) => cluster.tokenFor(sub, expS - Math.floor(Date.now() / 1000));

describe('token expiry', () => {
  it('at exp the server emits auth:expired then disconnects; a socket that sent auth:refresh (same sub) stays', async () => {
    const user = cluster.user('exp');
    // Six seconds: ample for the connect and the request before the refresh, even on a loaded machine.
    const short = cluster.tokenFor(user, 6);
    const refreshed = await connectTab(B, short, { name: 'refreshed' });
    const fresh = cluster.tokenFor(user, 3600);
    const ack = await refreshed.request('auth:refresh', { token: fresh });
    expect(ack).toEqual({ ok: true, data: { exp: expOf(fresh) } });
    const expiresFirst = await connectTab(A, short, { name: 'expires' });
    // A third socket whose token ends a second after `short`: its expiry is the later event to wait for.
    const later = await connectTab(A, tokenUntil(user, expOf(short) + 1), { name: 'later' });

    const expired = await expiresFirst.waitFor<{ exp: number }>('auth:expired');
    expect(expired).toEqual({ exp: expOf(short) });
    expect(await expiresFirst.disconnected()).toBe('io server disconnect');
    const order = expiresFirst.events.map((e) => e.event);
    expect(order.indexOf('auth:expired')).toBeLessThan(order.indexOf('disconnect'));

    await later.waitFor('auth:expired');
    expect(await later.disconnected()).toBe('io server disconnect');
    // Past both of those deadlines, the refreshed socket is still connected and answering.
    expect(refreshed.connected).toBe(true);
    expect(refreshed.all('auth:expired')).toEqual([]);
    expect((await refreshed.request('conversation:list', {})).ok).toBe(true);
  });

  it('a refresh with a token that ends sooner does not bring the expiry forward', async () => {
    const user = cluster.user('exp-shorter');
    const long = cluster.tokenFor(user, 3600);
    const tab = await connectTab(A, long, { name: 'long' });
    const brief = cluster.tokenFor(user, 4);
    // Accepted (it is valid), and the socket keeps the later expiry.
    expect(await tab.request('auth:refresh', { token: brief })).toEqual({ ok: true, data: { exp: expOf(long) } });
    // Past the brief token's end (a socket on it, on the same node, is expired first), the socket is still there.
    const barrier = await connectTab(A, tokenUntil(user, expOf(brief) + 1), { name: 'barrier' });
    await barrier.waitFor('auth:expired');
    expect(tab.connected).toBe(true);
    expect(tab.all('auth:expired')).toEqual([]);
    expect((await tab.request('conversation:list', {})).ok).toBe(true);
  });

  it('auth:refresh is refused for another sub, a garbage or an expired token, and the session keeps its exp', async () => {
    const user = cluster.user('refresh');
    const other = cluster.user('intruder');
    const tab = await connectTab(A, cluster.tokenFor(user, 3600));
    const unauthorized = { ok: false, error: { code: 'UNAUTHORIZED', message: expect.any(String) } };
    expect(await tab.request('auth:refresh', { token: cluster.tokenFor(other, 7200) })).toEqual(unauthorized);
    expect(await tab.request('auth:refresh', { token: 'not.a.jwt' })).toEqual(unauthorized);
    expect(await tab.request('auth:refresh', { token: signToken(user, 7200, 'another-secret-of-at-least-32-bytes-long!!') })).toEqual(
      unauthorized,
    );
    // The socket vocabulary has no TOKEN_EXPIRED: an expired token is UNAUTHORIZED here.
    expect(await tab.request('auth:refresh', { token: cluster.tokenFor(user, -10) })).toEqual(unauthorized);
    expect(await tab.request('auth:refresh', {} as never)).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
    expect(tab.connected).toBe(true);
    expect((await tab.request('conversation:list', {})).ok).toBe(true);
  });
});

describe('handshake refusals', () => {
  it('no token, garbage, a wrong key, alg none, no exp or an oversized sub: UNAUTHORIZED; an expired token: TOKEN_EXPIRED', async () => {
    const user = cluster.user('hs');
    const now = Math.floor(Date.now() / 1000);
    const cases: [string | undefined, string][] = [
      [undefined, 'UNAUTHORIZED'],
      ['garbage', 'UNAUTHORIZED'],
      [signToken(user, 3600, 'a-different-secret-that-is-long-enough-0123456789'), 'UNAUTHORIZED'],
      [jwt.sign({ sub: user, exp: now + 3600 }, '', { algorithm: 'none' }), 'UNAUTHORIZED'],
      [jwt.sign({ sub: user }, CLUSTER_SECRET, { algorithm: 'HS256' }), 'UNAUTHORIZED'],
      [jwt.sign({ sub: 'x'.repeat(256), exp: now + 3600 }, CLUSTER_SECRET, { algorithm: 'HS256' }), 'UNAUTHORIZED'],
      [cluster.tokenFor(user, -10), 'TOKEN_EXPIRED'],
    ];
    for (const [token, code] of cases) {
      for (const tokenIn of ['auth', 'header'] as const) {
        const err = await connectError(A, token, { tokenIn });
        expect({ token, tokenIn, data: err.data }).toEqual({ token, tokenIn, data: { code } });
        expect(typeof err.message).toBe('string');
      }
    }
  });

  it('the main namespace serves nothing', async () => {
    const err = await connectError(A, cluster.tokenFor(cluster.user()), { namespace: '/' });
    expect(err.data).toEqual({ code: 'UNAUTHORIZED' });
  });

  it('a token in the Authorization: Bearer header works, over websocket and over polling', async () => {
    const user = cluster.user('bearer');
    const token = cluster.tokenFor(user);
    const ws = await connectTab(A, token, { tokenIn: 'header', transports: ['websocket'] });
    const polling = await connectTab(B, token, { tokenIn: 'header', transports: ['polling'] });
    const { conversation } = await ws.ok('conversation:create', { title: 'via header' });
    await polling.waitFor('conversation:created', (p: { conversation: { id: string } }) => p.conversation.id === conversation.id);
    expect(polling.socket.io.engine.transport.name).toBe('polling');
  });
});

describe('MAX_SOCKETS_PER_USER=2', () => {
  it('a third socket on a node is refused with TOO_MANY_CONNECTIONS; a closed one frees its place', async () => {
    const user = cluster.user('cap');
    const token = cluster.tokenFor(user);
    const first = await connectTab(A, token);
    await connectTab(A, token);
    expect((await connectError(A, token)).data).toEqual({ code: 'TOO_MANY_CONNECTIONS' });
    // Another user is not affected.
    await connectTab(A, cluster.tokenFor(cluster.user('cap-other')));
    first.close();
    // The server learns of the close asynchronously: retry until the place is free.
    let tab: Tab | undefined;
    for (let attempt = 0; attempt < 100 && !tab; attempt++) {
      tab = await connectTab(A, token).catch((err: { data?: { code?: string } }) => {
        expect(err.data).toEqual({ code: 'TOO_MANY_CONNECTIONS' });
        return new Promise<undefined>((r) => setTimeout(() => r(undefined), 50));
      });
    }
    expect(tab?.connected).toBe(true);
  });

  it('concurrent handshakes never exceed the cap', async () => {
    const user = cluster.user('cap-race');
    const token = cluster.tokenFor(user);
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => connectTab(A, token)));
    const accepted = results.filter((r) => r.status === 'fulfilled');
    expect(accepted).toHaveLength(2);
    for (const r of results)
      if (r.status === 'rejected') expect((r.reason as { data?: unknown }).data).toEqual({ code: 'TOO_MANY_CONNECTIONS' });
  });
});
