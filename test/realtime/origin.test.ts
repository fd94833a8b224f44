// The Origin allow-list is enforced at the handshake itself (allowRequest), for polling and WebSocket alike,
// before the token is looked at: a foreign page cannot open a socket even with a valid token.
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.ts';
import { closeAllTabs, connectError, connectTab } from '../helpers/sockets.ts';

let cluster: Cluster;
/** CORS_ORIGINS=http://allowed.example */
let listed: ClusterNode;
/** CORS_ORIGINS unset: only the gateway's own origin. */
let own: ClusterNode;

const ALLOWED = 'http://allowed.example';
const EVIL = 'http://evil.example';

beforeAll(async () => {
  cluster = await startCluster({ nodes: 1, env: { ASSISTANT: 'none', CORS_ORIGINS: ALLOWED } });
  listed = cluster.nodes[0]!;
  own = await cluster.addNode({ CORS_ORIGINS: undefined });
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

const handshake = (node: ClusterNode, origin?: string) =>
  fetch(`${node.url}/socket.io/?EIO=4&transport=polling`, { headers: origin === undefined ? {} : { origin } });

describe('with CORS_ORIGINS=http://allowed.example', () => {
  it('a handshake from a foreign Origin is refused with HTTP 403, over polling and WebSocket, even with a valid token', async () => {
    const token = cluster.tokenFor(cluster.user('evil'));
    const res = await handshake(listed, EVIL);
    expect(res.status).toBe(403);
    await res.body?.cancel();
    for (const transports of [['polling'], ['websocket']] as const) {
      const err = await connectError(listed.url, token, { transports: [...transports], extraHeaders: { origin: EVIL } });
      // Refused at the transport, before the namespace: no err.data.code from the token check.
      expect(err.data?.code).toBeUndefined();
    }
    // Without a token as well: the Origin is judged first.
    const err = await connectError(listed.url, undefined, { transports: ['polling'], extraHeaders: { origin: EVIL } });
    expect(err.data?.code).toBeUndefined();
    // 'null' (sandboxed frames, file: pages) is not on the list either.
    expect((await handshake(listed, 'null')).status).toBe(403);
  });

  it('a WebSocket upgrade from a foreign Origin is answered 403 too; the listed Origin gets 101', async () => {
    const firstLine = (origin: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(Number(new URL(listed.url).port), '127.0.0.1');
        socket.once('error', reject);
        socket.once('data', (data) => {
          resolve(data.toString().split('\r\n')[0]!);
          socket.destroy();
        });
        socket.write(
          `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: ${new URL(listed.url).host}\r\nOrigin: ${origin}\r\n` +
            'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
        );
      });
    expect(await firstLine(EVIL)).toBe('HTTP/1.1 403 Forbidden');
    expect(await firstLine(ALLOWED)).toBe('HTTP/1.1 101 Switching Protocols');
  });

  it('the listed Origin connects (and gets the CORS headers); without a token it is judged by the token: UNAUTHORIZED', async () => {
    const res = await handshake(listed, ALLOWED);
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    await res.body?.cancel();
    const token = cluster.tokenFor(cluster.user('allowed'));
    for (const transports of [['polling'], ['websocket'], ['polling', 'websocket']] as const) {
      const tab = await connectTab(listed.url, token, { transports: [...transports], extraHeaders: { origin: ALLOWED } });
      expect((await tab.request('conversation:list', {})).ok).toBe(true);
    }
    expect((await connectError(listed.url, undefined, { extraHeaders: { origin: ALLOWED } })).data).toEqual({ code: 'UNAUTHORIZED' });
  });

  it('no Origin at all (a non-browser client) is judged by its token alone', async () => {
    expect((await handshake(listed)).status).toBe(200);
    const tab = await connectTab(listed.url, cluster.tokenFor(cluster.user('cli')), { transports: ['polling', 'websocket'] });
    expect(tab.connected).toBe(true);
    expect((await connectError(listed.url, 'garbage', { transports: ['polling'] })).data).toEqual({ code: 'UNAUTHORIZED' });
  });
});

describe('with CORS_ORIGINS unset', () => {
  it("only the gateway's own origin is let in", async () => {
    const token = cluster.tokenFor(cluster.user('own'));
    const self = `http://127.0.0.1:${own.port}`;
    expect((await handshake(own, self)).status).toBe(200);
    for (const transports of [['polling'], ['websocket']] as const) {
      const tab = await connectTab(own.url, token, { transports: [...transports], extraHeaders: { origin: self } });
      expect((await tab.request('conversation:list', {})).ok).toBe(true);
    }
    // The same host and port with the other scheme is the gateway's own page too: behind a proxy that ends TLS the
    // browser's Origin is https while the gateway hears plain http on the same Host.
    const behindTls = `https://127.0.0.1:${own.port}`;
    expect((await handshake(own, behindTls)).status).toBe(200);
    const tlsTab = await connectTab(own.url, token, { transports: ['websocket'], extraHeaders: { origin: behindTls } });
    expect((await tlsTab.request('conversation:list', {})).ok).toBe(true);
    // Another port, or another host with the same port, is not.
    for (const foreign of [EVIL, ALLOWED, `http://127.0.0.1:${own.port + 1}`, `http://localhost:${own.port}`, 'null']) {
      expect((await handshake(own, foreign)).status).toBe(403);
      for (const transports of [['polling'], ['websocket']] as const) {
        const err = await connectError(own.url, token, { transports: [...transports], extraHeaders: { origin: foreign } });
        expect(err.data?.code).toBeUndefined();
      }
    }
    // No Origin: token alone.
    await connectTab(own.url, token);
  });
});
