import { Router } from 'express';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { bearerToken } from '../auth/jwt.ts';
import { timingSafeEqual } from 'node:crypto';

export type ReadinessCheck = () => Promise<void>;

/** Liveness, readiness (every dependency answers) and Prometheus metrics. */
export function opsRoutes(opts: {
  checks: Record<string, ReadinessCheck>;
  metrics: Metrics;
  metricsToken?: string;
  log: Logger;
  isClosing: () => boolean;
}): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    const results = await Promise.all(
      Object.entries(opts.checks).map(async ([name, check]) => {
        try {
          await check();
          return [name, 'ok'] as const;
        } catch (err) {
          opts.log.warn({ check: name, err: (err as Error).message }, 'readiness check failed');
          return [name, 'unavailable'] as const;
        }
      }),
    );
    const checks = Object.fromEntries(results);
    const ready = !opts.isClosing() && results.every(([, r]) => r === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : opts.isClosing() ? 'closing' : 'unavailable', checks });
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
