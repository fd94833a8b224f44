import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GatewayConfig } from './config.ts';
import { createAssistant, DEFAULT_TIMING, type Assistant, type AssistantTiming } from './assistant/assistant.ts';
import { chatRoutes } from './assistant/chat.routes.ts';
import { createEchoProvider } from './assistant/echo.ts';
import { createOpenAiProvider } from './assistant/openai.ts';
import type { AssistantProvider } from './assistant/provider.ts';
import { createReplyStore } from './assistant/reply-store.ts';
import { createTokenVerifier } from './auth/jwt.ts';
import { createConversationService } from './conversations/conversation.service.ts';
import { initOrm, pingDatabase, type Orm } from './db/orm.ts';
import { createHttpApp } from './http/app.ts';
import type { ReadinessCheck } from './http/ops.routes.ts';
import { createSendLimiter } from './limits/send-limiter.ts';
import { createMessageService, DEFAULT_BATCHING } from './messages/message.service.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import { createRedisClients, pingRedis } from './realtime/redis.ts';
import { createRealtime, type Realtime } from './realtime/socket-server.ts';
import type { Broadcast } from './shared/broadcast.ts';
import { waitAtMost } from './shared/time-bounds.ts';
import type { Services } from './services.ts';
import { createUserService } from './users/user.service.ts';

export interface Gateway {
  config: GatewayConfig;
  httpServer: HttpServer;
  orm: Orm;
  services: Services;
  assistant: Assistant;
  realtime: Realtime;
  metrics: Metrics;
  log: Logger;
  /** Starts listening; resolves with the bound port (port 0 picks a free one). */
  listen(port?: number, host?: string): Promise<number>;
  /** Graceful shutdown: stop accepting, finish in-flight work and replies (bounded), close connections. Idempotent. */
  close(): Promise<void>;
}

export interface GatewayOptions {
  log?: Logger;
  /** Overrides of the reply timings (tests shorten the interrupted-reply bound). */
  assistantTiming?: Partial<AssistantTiming>;
  /** Replaces the configured assistant provider (tests, benchmarks). */
  provider?: AssistantProvider;
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
  const redis = config.redisUrl ? createRedisClients(config.redisUrl, log, metrics) : undefined;
  const verifyToken = createTokenVerifier(config.auth);

  // Publishing needs the socket server, which needs the HTTP server, which needs the services: bind late.
  let realtime: Realtime | undefined;
  const publish = (broadcasts: Broadcast[]) => realtime?.publish(broadcasts);
  const deps = { orm, log, metrics };
  const sendLimiter = createSendLimiter({
    points: config.limits.sendRate,
    durationS: config.limits.sendRateWindowS,
    redis: redis?.commands,
    prefix: config.redisPrefix,
  });
  const messages = createMessageService({ ...deps, batching: { ...DEFAULT_BATCHING, concurrency: config.appendConcurrency, maxQueued: config.appendQueueMax } });
  const replyStore = createReplyStore(orm);
  const assistant = createAssistant({
    provider: options.provider ?? providerFor(config),
    messages,
    store: replyStore,
    publish,
    metrics,
    log,
    timing: replyTiming(config.assistant.staleMs, options.assistantTiming),
  });
  const services: Services = {
    conversations: createConversationService(deps),
    messages,
    users: createUserService(deps),
    publish,
    async announceUserMessage(userId, outcome) {
      publish(outcome.broadcasts);
      // On a retry replyTo finds the reply already started (one per user message) and waits for it or returns it.
      return assistant.replyTo(userId, outcome.data.message).catch((err) => {
        log.error({ err, messageId: outcome.data.message.id }, 'assistant reply could not start');
        return null;
      });
    },
    findMessage: (userId, messageId) => replyStore.find(userId, messageId),
    async sendUserMessage(userId, input) {
      await sendLimiter.consume(userId);
      const outcome = await messages.append(userId, input);
      if (outcome.data.duplicate) await sendLimiter.refund(userId);
      return outcome;
    },
    disconnectUser: (userId) => realtime?.disconnectUser(userId),
  };

  let closing = false;
  const httpInflight = { count: 0 };
  const readiness: Record<string, ReadinessCheck> = { database: () => pingDatabase(orm) };
  if (redis) readiness.redis = () => pingRedis(redis.commands);
  const app = createHttpApp({
    services,
    verifyToken,
    auth: config.auth,
    metrics,
    log,
    maxMessageChars: config.maxMessageChars,
    metricsToken: config.metricsToken,
    readiness,
    isClosing: () => closing,
    inflight: httpInflight,
    extraApiRoutes: (api) =>
      chatRoutes(api, { services, maxMessageChars: config.maxMessageChars, timeoutMs: config.assistant.chatTimeoutMs }),
  });
  const httpServer = createServer(app);
  realtime = createRealtime(httpServer, {
    corsOrigins: config.corsOrigins,
    maxMessageChars: config.maxMessageChars,
    maxSocketsPerUser: config.limits.maxSocketsPerUser,
    redis,
    redisAdapter: config.redisAdapter,
    redisPrefix: config.redisPrefix,
    verifyToken,
    assistant,
    metrics,
    log,
    services,
    isClosing: () => closing,
  });
  assistant.startSweeper();

  let closed: Promise<void> | undefined;
  async function shutdown() {
    closing = true;
    const deadline = Date.now() + config.shutdownTimeoutMs;
    log.info('shutting down: no new connections, finishing in-flight work');
    httpServer.close();
    httpServer.closeIdleConnections();
    // Units of work already started commit and get their ack; replies run to their end within the bound.
    while ((realtime!.inflight.count > 0 || httpInflight.count > 0) && Date.now() < deadline) await sleep(20);
    await assistant.drain(Math.max(0, deadline - Date.now()));
    await realtime!.close();
    httpServer.closeAllConnections();
    await redis?.close();
    // Bounded: a pool still opening its first connection can keep close() waiting for good.
    await waitAtMost(orm.close(true), Math.max(1000, deadline - Date.now()));
    log.info('shut down');
  }

  return {
    config,
    httpServer,
    orm,
    services,
    assistant,
    realtime,
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

/** A live reply must save (its heartbeat) well within the staleness bound, or the sweeper would take it for dead. */
function replyTiming(staleMs: number, overrides?: Partial<AssistantTiming>): Partial<AssistantTiming> {
  const heartbeatMs = Math.min(DEFAULT_TIMING.heartbeatMs, Math.floor(staleMs / 3));
  const persistMs = Math.min(DEFAULT_TIMING.persistMs, heartbeatMs);
  return { staleMs, heartbeatMs, persistMs, ...overrides };
}

function providerFor(config: GatewayConfig): AssistantProvider | undefined {
  switch (config.assistant.kind) {
    case 'echo':
      return createEchoProvider(config.assistant.delayMs);
    case 'openai':
      return createOpenAiProvider({ ...config.assistant.openai, timeoutMs: config.assistant.timeoutMs });
    case 'none':
      return undefined;
  }
}
