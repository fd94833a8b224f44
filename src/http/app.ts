import express, { type Express } from 'express';
import type { AuthConfig } from '../config.ts';
import { demoRoutes } from '../auth/demo.routes.ts';
import type { TokenVerifier } from '../auth/jwt.ts';
import { conversationRoutes } from '../conversations/conversation.routes.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Services } from '../services.ts';
import { userRoutes } from '../users/user.routes.ts';
import { requireAuth } from './auth.ts';
import { errorHandler, notFoundRoute } from './errors.ts';
import { opsRoutes, type ReadinessCheck } from './ops.routes.ts';
import { staticRoutes } from './static.routes.ts';

export interface HttpAppOptions {
  services: Services;
  verifyToken: TokenVerifier;
  auth: AuthConfig;
  metrics: Metrics;
  log: Logger;
  maxMessageChars: number;
  metricsToken?: string;
  readiness: Record<string, ReadinessCheck>;
  isClosing: () => boolean;
  /** Requests in progress, so shutdown can let them finish. */
  inflight: { count: number };
  /** Extra authenticated routes under /api (the assistant's waiting routes). */
  extraApiRoutes?: (router: express.Router) => void;
}

export function createHttpApp(o: HttpAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(requestMetrics(o.metrics, o.inflight));

  // A message is at most maxMessageChars code points; an encoder that escapes all non-ASCII (Python's json)
  // spends 12 bytes on one (a surrogate pair as \\uXXXX\\uXXXX). Plus the other fields.
  const bodyLimit = o.maxMessageChars * 12 + 16 * 1024;
  app.use(express.json({ limit: bodyLimit }));

  app.use(opsRoutes({ checks: o.readiness, metrics: o.metrics, metricsToken: o.metricsToken, log: o.log, isClosing: o.isClosing }));
  // With a key configured the demo endpoint does not exist: 404, token or not.
  app.use('/api/demo', o.auth.demo ? demoRoutes(o.auth) : notFoundRoute);

  const api = express.Router();
  api.use(requireAuth(o.verifyToken));
  api.use('/conversations', conversationRoutes(o.services, o.maxMessageChars));
  api.use('/me', userRoutes(o.services));
  o.extraApiRoutes?.(api);
  app.use('/api', api);

  app.use(staticRoutes({ demo: o.auth.demo }));
  app.use(notFoundRoute);
  app.use(errorHandler(o.log, o.metrics));
  return app;
}

function requestMetrics(metrics: Metrics, inflight: { count: number }): express.RequestHandler {
  return (req, res, next) => {
    const start = process.hrtime.bigint();
    inflight.count++;
    res.once('close', () => inflight.count--);
    res.on('finish', () => {
      // The matched route pattern, never the raw path: ids would explode the label set.
      const route = req.route?.path ? `${req.baseUrl}${req.route.path}` : 'unmatched';
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
      metrics.httpDuration.observe({ method: req.method, route }, seconds);
    });
    next();
  };
}
