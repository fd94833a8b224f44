import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GatewayConfig } from './config.ts';
import { createTokenVerifier } from './auth/jwt.ts';
import { createConversationService } from './conversations/conversation.service.ts';
import { initOrm, pingDatabase, type Orm } from './db/orm.ts';
import { createHttpApp } from './http/app.ts';
import { createMessageService } from './messages/message.service.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import type { Services } from './services.ts';
import { createUserService } from './users/user.service.ts';

export interface Gateway {
  config: GatewayConfig;
  httpServer: HttpServer;
  orm: Orm;
  services: Services;
  metrics: Metrics;
  log: Logger;
  /** Starts listening; resolves with the bound port (PORT=0 picks a free one). */
  listen(port?: number, host?: string): Promise<number>;
  /** Graceful shutdown: stop accepting, finish in-flight work (bounded), close connections. Idempotent. */
  close(): Promise<void>;
}

export interface GatewayOptions {
  log?: Logger;
}

/** The composition root: builds every part from the config; only the entry file listens for real. */
export async function createGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const log = options.log ?? createLogger(config.logLevel, { node: config.nodeId });
  const metrics = createMetrics(config.nodeId);
  const orm = await initOrm({
    databaseUrl: config.databaseUrl,
    pgliteDir: config.pgliteDir,
    poolMax: config.dbPoolMax,
    migrate: config.migrateOnStart,
    log,
  });
  const verifyToken = createTokenVerifier(config.auth);
  const deps = { orm, log, metrics };

  const services: Services = {
    conversations: createConversationService(deps),
    messages: createMessageService(deps),
    users: createUserService(deps),
    publish: () => {},
    announceUserMessage: (_userId, outcome) => services.publish(outcome.broadcasts),
    disconnectUser: () => {},
  };

  let closing = false;
  const app = createHttpApp({
    services,
    verifyToken,
    auth: config.auth,
    metrics,
    log,
    maxMessageChars: config.maxMessageChars,
    metricsToken: config.metricsToken,
    readiness: { database: () => pingDatabase(orm) },
    isClosing: () => closing,
  });
  const httpServer = createServer(app);

  let closed: Promise<void> | undefined;
  async function shutdown() {
    closing = true;
    log.info('shutting down');
    const httpClosed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
    httpServer.closeIdleConnections();
    const bounded = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownTimeoutMs).unref());
    await Promise.race([httpClosed, bounded]);
    httpServer.closeAllConnections();
    await orm.close(true);
    log.info('shut down');
  }

  return {
    config,
    httpServer,
    orm,
    services,
    metrics,
    log,
    listen(port = config.port, host = config.host) {
      return new Promise((resolve, reject) => {
        httpServer.once('error', reject);
        httpServer.listen(port, host, () => {
          httpServer.off('error', reject);
          resolve((httpServer.address() as AddressInfo).port);
        });
      });
    },
    close() {
      closed ??= shutdown();
      return closed;
    },
  };
}
