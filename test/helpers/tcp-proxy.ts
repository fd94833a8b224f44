// A TCP forwarder in front of PostgreSQL or Redis, so a test can take "the database" or "Redis" away from one
// gateway node (each node gets proxies of its own) without touching the machine's shared servers:
// - cut(): an outage. Every connection is closed and new ones are reset at once, as by a crashed or unreachable
//   server, until restore().
// - pause(): a hang. Connections stay open but no byte moves in either direction, and new connections are accepted
//   but not forwarded: a server stopped (SIGSTOP) or a network that drops packets without telling anyone. Nothing
//   is lost, as TCP loses nothing: restore() delivers what was held, as the peer's retransmissions would.
// - restore(): back to forwarding.
// The listening socket stays open throughout, so the port never changes and cannot be taken by someone else.
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

export type ProxyState = 'up' | 'cut' | 'paused';

export interface TcpProxy {
  readonly port: number;
  readonly state: ProxyState;
  /** Connections open through the proxy now (held ones included). */
  readonly connections: number;
  /** The same URL with host and port pointing through the proxy (a postgres:// or redis:// connection string). */
  wrap(url: string): string;
  cut(): void;
  pause(): void;
  restore(): void;
  close(): Promise<void>;
}

/** One client connection and its upstream; `held` keeps the bytes that arrived while paused, per direction. */
interface Link {
  client: Socket;
  upstream?: Socket;
  held: { toUpstream: Buffer[]; toClient: Buffer[] };
  /** A side that closed while paused: the other side learns of it on restore, after the held bytes. */
  closedWhilePaused: boolean;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let state: ProxyState = 'up';
  const links = new Set<Link>();

  const drop = (link: Link) => {
    links.delete(link);
    link.client.destroy();
    link.upstream?.destroy();
  };

  /** Forwards `from`'s bytes to `to` with backpressure; while paused, holds them (and stops reading). */
  const forward = (link: Link, from: Socket, to: () => Socket | undefined, held: Buffer[]) => {
    from.on('data', (chunk: Buffer) => {
      const dest = to();
      if (state === 'paused' || !dest || held.length > 0) {
        held.push(chunk);
        from.pause();
        return;
      }
      if (!dest.write(chunk)) {
        from.pause();
        dest.once('drain', () => {
          if (state === 'up') from.resume();
        });
      }
    });
    from.on('error', () => undefined);
    from.on('close', () => {
      if (state === 'paused') link.closedWhilePaused = true;
      else drop(link);
    });
  };

  const connectUpstream = (link: Link) => {
    const upstream = createConnection(target);
    link.upstream = upstream;
    forward(link, upstream, () => link.client, link.held.toClient);
  };

  const server = createServer((client) => {
    if (state === 'cut') {
      client.on('error', () => undefined);
      client.resetAndDestroy();
      return;
    }
    const link: Link = { client, held: { toUpstream: [], toClient: [] }, closedWhilePaused: false };
    links.add(link);
    forward(link, client, () => link.upstream, link.held.toUpstream);
    // A connection accepted during a hang is held: it reaches the server once the hang ends.
    if (state === 'paused') client.pause();
    else connectUpstream(link);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    get state() {
      return state;
    },
    get connections() {
      return links.size;
    },
    wrap(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cut() {
      state = 'cut';
      for (const link of [...links]) drop(link);
    },
    pause() {
      if (state === 'cut') return;
      state = 'paused';
      for (const link of links) {
        link.client.pause();
        link.upstream?.pause();
      }
    },
    restore() {
      const wasPaused = state === 'paused';
      state = 'up';
      if (!wasPaused) return;
      for (const link of [...links]) {
        if (!link.upstream) connectUpstream(link);
        const upstream = link.upstream!;
        for (const chunk of link.held.toUpstream.splice(0)) upstream.write(chunk);
        for (const chunk of link.held.toClient.splice(0)) link.client.write(chunk);
        if (link.closedWhilePaused) {
          // The held bytes first, then the close, as the peer would have seen them.
          links.delete(link);
          link.client.end();
          upstream.end();
          continue;
        }
        link.client.resume();
        upstream.resume();
      }
    },
    close() {
      state = 'cut';
      for (const link of [...links]) drop(link);
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
