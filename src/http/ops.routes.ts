import { Router } from 'express';
import type { Metrics } from '../observability/metrics.ts';
import { bearerToken } from '../auth/jwt.ts';
import { timingSafeEqual } from 'node:crypto';

/** What /readyz answers: whether this node can serve, and the state of each dependency. */
export interface Readiness {
  ready: boolean;
  status: 'ready' | 'closing' | 'unavailable';
  checks: Record<string, string>;
}

export interface ReadinessSources {
  database: { readonly up: boolean };
  /** Whether writes stall past the write bound (see the append batcher's writesStalled). */
  writesStalled: () => boolean;
  redis?: { degraded(): boolean };
  /** The identity provider's keys, when tokens are verified with a JWKS. */
  jwks?: { state(): 'ok' | 'stale' | 'unavailable' };
  isClosing: () => boolean;
}

/**
 * Ready means this node can serve: the database answers, and writes commit within their bound (a lock held for
 * long holds every write: that node is not ready, though its pings answer). Redis away is reported, but the node
 * stays ready: it still serves its own sockets, and a balancer that took every node out would serve no one.
 * A JWKS never fetched is not ready (every token would be refused: a balancer keeps sending to the nodes that have
 * keys); one that fails later is reported as `stale` and the node stays ready, verifying with the keys it has.
 */
export function readinessOf(o: ReadinessSources): () => Readiness {
  return () => {
    const database = !o.database.up ? 'unavailable' : o.writesStalled() ? 'writes_stalled' : 'ok';
    const checks: Record<string, string> = { database };
    if (o.redis) checks.redis = o.redis.degraded() ? 'degraded' : 'ok';
    if (o.jwks) checks.jwks = o.jwks.state();
    const closing = o.isClosing();
    const ready = !closing && database === 'ok' && checks.jwks !== 'unavailable';
    return { ready, status: closing ? 'closing' : ready ? 'ready' : 'unavailable', checks };
  };
}

/** Liveness, readiness (answered from state kept up to date elsewhere, no round trip per probe) and Prometheus metrics. */
export function opsRoutes(opts: { readiness: () => Readiness; metrics: Metrics; metricsToken?: string }): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', (_req, res) => {
    const { ready, status, checks } = opts.readiness();
    res.status(ready ? 200 : 503).json({ status, checks });
  });

  router.get('/metrics', async (req, res) => {
    if (opts.metricsToken && !sameSecret(bearerToken(req.headers.authorization), opts.metricsToken)) {
      res.status(401).json({ error: { code: 'UNAUTHORIZED', message: 'metrics need the METRICS_TOKEN bearer token' } });
      return;
    }
    res.setHeader('Content-Type', opts.metrics.registry.contentType);
    res.send(await opts.metrics.registry.metrics());
  });
  return router;
}

function sameSecret(given: string | undefined, expected: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
