import express, { type Express, type RequestHandler, type Router } from 'express';
import { demoRoutes } from '../auth/demo.routes.ts';
import { requireAuth } from '../auth/http.ts';
import type { TokenVerifier } from '../auth/jwt.ts';
import type { AuthConfig } from '../auth/keys.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { requestIdFrom, withRequest } from '../observability/request-context.ts';
import { apiCors } from './cors.ts';
import { errorHandler, notFoundRoute } from './errors.ts';
import { opsRoutes, type Readiness } from './ops.routes.ts';
import { staticRoutes } from './static.routes.ts';

/** A feature's router and where it is mounted under `/api` (every route there needs a bearer token). */
export interface ApiRoutes {
  path: string;
  router: Router;
}

export interface HttpAppOptions {
  /** Every feature's routes, mounted in this order. */
  api: ApiRoutes[];
  verifyToken: TokenVerifier;
  auth: AuthConfig;
  metrics: Metrics;
  log: Logger;
  maxMessageChars: number;
  metricsToken?: string;
  /** Page origins whose scripts may call /api (CORS_ORIGINS). */
  corsOrigins?: string[];
  readiness: () => Readiness;
  /** Requests in progress, so shutdown can let them finish. */
  inflight: { count: number };
  /** Proxies whose X-Forwarded-For is believed (express's `trust proxy`). */
  trustedProxies: string[];
}

export function createHttpApp(o: HttpAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', o.trustedProxies);
  // Every request has an id (the client's or proxy's X-Request-Id when sane), carried into its audit lines.
  app.use((req, res, next) => {
    const requestId = requestIdFrom(req.get('x-request-id'));
    res.setHeader('X-Request-Id', requestId);
    withRequest({ requestId, door: 'rest' }, next);
  });
  app.use(requestMetrics(o.metrics, o.inflight));
  // Before the body parser and the token check: their refusals (413, 401) must reach a listed page readable too.
  app.use('/api', apiCors(o.corsOrigins));

  // A message is at most maxMessageChars code points; an encoder that escapes all non-ASCII (Python's json)
  // spends 12 bytes on one (a surrogate pair as \\uXXXX\\uXXXX). Plus the other fields.
  const bodyLimit = o.maxMessageChars * 12 + 16 * 1024;
  app.use(express.json({ limit: bodyLimit }));

  app.use(mounted(''), opsRoutes({ readiness: o.readiness, metrics: o.metrics, metricsToken: o.metricsToken }));
  // With a key configured the demo endpoint does not exist: 404, token or not.
  app.use('/api/demo', mounted('/api/demo'), o.auth.demo ? demoRoutes(o.auth) : notFoundRoute);

  app.use('/api', requireAuth(o.verifyToken));
  for (const { path, router } of o.api) app.use(`/api${path}`, mounted(`/api${path}`), router);

  app.use(mounted(''), staticRoutes({ demo: o.auth.demo }));
  app.use(notFoundRoute);
  app.use(errorHandler(o.log, o.metrics));
  return app;
}

/**
 * Remembers where the router that answers was mounted. Express restores `req.baseUrl` as routing unwinds, so by the
 * time a response finishes it may no longer name the mount point.
 */
function mounted(path: string): RequestHandler {
  return (_req, res, next) => {
    res.locals.mountPath = path;
    next();
  };
}

function requestMetrics(metrics: Metrics, inflight: { count: number }): express.RequestHandler {
  return (req, res, next) => {
    const start = process.hrtime.bigint();
    inflight.count++;
    res.once('close', () => inflight.count--);
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const route = routeLabel(req.route?.path, res.locals.mountPath, req.originalUrl);
      metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
      metrics.httpDuration.observe({ method: req.method, route }, seconds);
    });
    next();
  };
}

/** The matched route pattern, never the raw path: ids would explode the label set. */
function routeLabel(pattern: unknown, mountPath: unknown, url: string): string {
  if (typeof pattern === 'string' && typeof mountPath === 'string') return `${mountPath}${pattern === '/' && mountPath ? '' : pattern}`;
  // Files served without a route (the widget bundles) share one label.
  if (url.startsWith('/widget/')) return '/widget/*';
  return 'unmatched';
}
