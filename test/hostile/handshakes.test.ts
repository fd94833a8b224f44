// The doors themselves: the per-user socket cap holds when many CONNECT packets come at once, a refused
// handshake does not keep its connection, one address cannot open connections without bound, and a path that
// cannot be decoded is a client's error, not the server's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, expectError } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startGateway, type StartedGateway } from '../helpers/gateway.ts';

let db: TestDatabase;
let gw: StartedGateway;
let strict: StartedGateway;

beforeAll(async () => {
  db = await createTestDatabase();
  gw = await startGateway({ DATABASE_URL: db.url, MAX_SOCKETS_PER_USER: '20', HANDSHAKE_RATE_LIMIT: '1000' });
  // Trusts no proxy: X-Forwarded-For is nobody's word here.
  strict = await startGateway({
    DATABASE_URL: db.url,
    HANDSHAKE_RATE_LIMIT: '5',
    HANDSHAKE_RATE_WINDOW_S: '60',
    TRUSTED_PROXIES: '10.0.0.1',
  });
});
afterAll(async () => {
  await gw?.close();
  await strict?.close();
  await db?.drop();
});

/** A raw Engine.IO v4 long-polling session: what a client that does not use socket.io-client can send. */
async function polling(url: string, headers: Record<string, string> = {}) {
  const base = `${url}/socket.io/?EIO=4&transport=polling`;
  const open = await fetch(base, { headers });
  if (open.status !== 200) return { status: open.status, session: undefined };
  const { sid } = JSON.parse((await open.text()).slice(1)) as { sid: string };
  const at = `${base}&sid=${sid}`;
  return {
    status: 200,
    session: {
      /** Sends packets in one request, as Engine.IO batches them (record separator between). */
      async send(packets: string[]) {
        const res = await fetch(at, { method: 'POST', body: packets.join('\x1e'), headers: { 'content-type': 'text/plain' } });
        await res.text();
        return res.status;
      },
      /** One long-poll: the packets waiting, or the status when the session is gone. */
      async poll(): Promise<{ status: number; packets: string[] }> {
        const res = await fetch(at);
        const text = await res.text();
        return { status: res.status, packets: res.status === 200 ? text.split('\x1e') : [] };
      },
    },
  };
}

describe('the per-user socket cap', () => {
  it('holds when 60 CONNECT packets of one user arrive in one request: 20 sockets, the rest refused TOO_MANY_CONNECTIONS', async () => {
    const token = gw.tokenFor('capped');
    const { session } = await polling(gw.url);
    expect(await session!.send(Array.from({ length: 60 }, () => `40/chat,${JSON.stringify({ token })}`))).toBe(200);
    const answers: string[] = [];
    while (answers.length < 60) {
      const { status, packets } = await session!.poll();
      expect(status).toBe(200);
      answers.push(...packets.filter((p) => p.startsWith('40/chat') || p.startsWith('44/chat')));
    }
    const accepted = answers.filter((p) => p.startsWith('40/chat'));
    const refused = answers.filter((p) => p.startsWith('44/chat'));
    expect(accepted).toHaveLength(20);
    expect(refused).toHaveLength(40);
    for (const p of refused) expect(p).toContain('TOO_MANY_CONNECTIONS');
  });
});

describe('a refused handshake', () => {
  it('is answered, then its connection is closed at once (not held until the heartbeat), and counted by reason', async () => {
    const metric = async () => {
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      return Number(text.match(/^chat_handshakes_refused_total\{[^}]*reason="unauthorized"[^}]*\} (\d+)/m)?.[1] ?? 0);
    };
    const before = await metric();
    const { session } = await polling(gw.url);
    await session!.send([`40/chat,${JSON.stringify({ token: 'not-a-token' })}`]);
    const first = await session!.poll();
    expect(first.packets.some((p) => p.startsWith('44/chat') && p.includes('UNAUTHORIZED'))).toBe(true);
    // The next poll finds the session closed (a close packet, or the session gone), not a wait for the heartbeat.
    let closed = first.packets.includes('1');
    for (let i = 0; i < 5 && !closed; i++) {
      const next = await session!.poll();
      closed = next.status === 400 || next.packets.includes('1');
    }
    expect(closed).toBe(true);
    expect(await metric()).toBe(before + 1);
  });
});

describe('new connections per address', () => {
  it('past the budget, a handshake from the same address is refused (403), and X-Forwarded-For from an untrusted peer changes nothing', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await polling(strict.url, { 'x-forwarded-for': `198.51.100.${i}` })).status);
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.slice(5)).toEqual([403, 403]);
  });

  it('counts each client apart behind a trusted proxy (loopback by default)', async () => {
    const trusting = await startGateway({ DATABASE_URL: db.url, HANDSHAKE_RATE_LIMIT: '2', HANDSHAKE_RATE_WINDOW_S: '60' });
    try {
      const from = async (address: string) => (await polling(trusting.url, { 'x-forwarded-for': address })).status;
      expect([await from('203.0.113.1'), await from('203.0.113.1'), await from('203.0.113.1')]).toEqual([200, 200, 403]);
      expect(await from('203.0.113.2')).toBe(200);
    } finally {
      await trusting.close();
    }
  });
});

describe('malformed paths', () => {
  it('answer 400 VALIDATION, not 500', async () => {
    const client = api(gw.url, gw.tokenFor('path-prober'));
    expectError(await client.get('/api/conversations/%ZZ'), 400, 'VALIDATION');
    expectError(await client.post('/api/%ZZ/chat', { message: 'hi' }), 400, 'VALIDATION');
    expectError(await client.get('/api/conversations/%E0%A4%A/messages'), 400, 'VALIDATION');
  });
});
