/** Where REDIS_URL points: one Redis server (`redis://`, `rediss://`), or a Redis Cluster (`redis+cluster://`). */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; username?: string; password?: string; tls: boolean };

const CLUSTER = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)\/?$/;

/**
 * `redis+cluster://[user:password@]host:port,host:port,…` (or `rediss+cluster://` for TLS): some of the cluster's
 * nodes, from which the client learns the rest (its masters, their slots, their replicas) and follows failovers.
 * Anything else is handed to ioredis as one server's URL.
 */
export function parseRedisTarget(url: string): RedisTarget {
  if (!/^rediss?\+cluster:/.test(url)) return { kind: 'single', url };
  const m = CLUSTER.exec(url);
  if (!m) throw new Error('a Redis Cluster URL is redis+cluster://[user:password@]host:port,host:port,…');
  const [, scheme, auth, hosts] = m;
  const nodes = hosts!.split(',').map((hostPort) => {
    const at = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostPort.trim());
    if (!at) throw new Error(`a Redis Cluster URL names host:port pairs; "${hostPort}" is not one`);
    return { host: at[1]!.replace(/^\[|\]$/g, ''), port: Number(at[2] ?? 6379) };
  });
  const [username, password] = auth === undefined ? [] : auth.includes(':') ? auth.split(/:(.*)/s) : [undefined, auth];
  return {
    kind: 'cluster',
    nodes,
    username: username ? decodeURIComponent(username) : undefined,
    password: password ? decodeURIComponent(password) : undefined,
    tls: scheme === 'rediss',
  };
}
