import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { accountRoutes } from './account/account.routes.ts';
import { createAssistant, DEFAULT_TIMING, type Assistant, type AssistantTiming } from './assistant/assistant.ts';
import { createEchoProvider } from './assistant/echo.ts';
import { createMcpTools } from './assistant/mcp.ts';
import { createOpenAiProvider } from './assistant/openai.ts';
import type { AssistantProvider } from './assistant/provider.ts';
import { createReplyStore } from './assistant/reply-store.ts';
import { createJwksKeys } from './auth/jwks.ts';
import { createTokenVerifier } from './auth/jwt.ts';
import { chatRoutes } from './chat/chat.routes.ts';
import { messageRoutes } from './chat/message.routes.ts';
import { seedRoutes } from './chat/seed.routes.ts';
import { createSendMessage, type SendMessage } from './chat/send-message.ts';
import type { GatewayConfig } from './config.ts';
import { conversationRoutes } from './conversations/conversation.routes.ts';
import { createConversationService, type ConversationService } from './conversations/conversation.service.ts';
import { createRetention, scheduleRetention } from './conversations/retention.ts';
import { watchDatabase } from './db/health.ts';
import { initOrm } from './db/orm.ts';
import type { Orm } from './db/types.ts';
import { entities } from './entities.ts';
import { createHttpApp } from './http/app.ts';
import { clientAddressOf } from './http/client-address.ts';
import { clientInfoOf } from './http/client-info.ts';
import { readinessOf } from './http/ops.routes.ts';
import { createUserLimits } from './limits/user-limits.ts';
import { createMessageService, DEFAULT_BATCHING, type MessageService } from './messages/message.service.ts';
import { createAudit } from './observability/audit.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import { watchBackpressure } from './realtime/backpressure.ts';
import { serveChatNamespace } from './realtime/chat-namespace.ts';
import { createFanout, type Fanout } from './realtime/fanout.ts';
import { createRedisClients } from './realtime/redis.ts';
import { createSocketServer, type SocketServer } from './realtime/socket-server.ts';
import { waitAtMost } from './shared/time-bounds.ts';
import { createUserService, refusingErased, type UserService } from './users/user.service.ts';

export interface Gateway {
  config: GatewayConfig;
  httpServer: HttpServer;
  orm: Orm;
  /** The services both doors share, for scripts and tests that drive the gateway from inside. */
  services: {
    conversations: ConversationService;
    messages: MessageService;
    users: UserService;
    sendMessage: SendMessage;
  };
  sockets: SocketServer;
  fanout: Fanout;
  assistant: Assistant;
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

/** Of the shutdown bound, what is kept for closing sockets, Redis and the database pool. */
const CLOSE_RESERVE_MS = 2_000;

/** The composition root: builds every part from the config, in order; only the entry file listens for real. */
export async function createGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const log = options.log ?? createLogger(config.logLevel, { node: config.nodeId });
  const metrics = createMetrics(config.nodeId);
  const orm = await initOrm({
    entities,
    databaseUrl: config.databaseUrl,
    pgliteDir: config.pgliteDir,
    schema: config.databaseSchema,
    poolMax: config.dbPoolMax,
    statementTimeoutMs: config.writeTimeoutMs,
    migrate: config.migrateOnStart,
    log,
  });
  const redis = config.redisUrl
    ? createRedisClients(config.redisUrl, {
        commandTimeoutMs: config.redisCommandTimeoutMs,
        prefix: config.redisPrefix,
        sharded: config.redisAdapter === 'sharded',
        log,
        metrics,
      })
    : undefined;
  const database = watchDatabase(orm, { intervalMs: 1000, timeoutMs: Math.min(1500, config.writeTimeoutMs), log });
  // With a JWKS, the start waits for the first fetch (bounded); a provider down then does not stop the start: the
  // node answers, refuses tokens and says not ready until a retry gets keys, while nodes already running serve on.
  const { auth } = config;
  const jwks = auth.kind === 'jwks' ? createJwksKeys({ ...auth.jwks, algorithms: auth.algorithms, log }) : undefined;
  await jwks?.start();
  const verifySignature = createTokenVerifier(auth, jwks);
  let closing = false;
  const isClosing = () => closing;

  const clientAddress = clientAddressOf(config.trustedProxies);
  // The socket server comes first: every write below publishes through its fan-out.
  const sockets = createSocketServer({
    corsOrigins: config.corsOrigins,
    maxMessageChars: config.maxMessageChars,
    redis,
    redisAdapter: config.redisAdapter,
    redisSubscriptionMode: config.redisSubscriptionMode,
    redisPrefix: config.redisPrefix,
    handshakes: config.limits.handshakes,
    clientAddress,
    metrics,
    log,
  });
  const fanout = createFanout(sockets.nsp, { redis, syncSpreadMs: config.syncSpreadMs, metrics, log });
  const publish = fanout.publish;

  const audit = createAudit({ log, node: config.nodeId, path: config.auditLog });
  const deps = { orm, log, audit };
  const conversations = createConversationService(deps);
  const messages = createMessageService({
    ...deps,
    metrics,
    batching: {
      ...DEFAULT_BATCHING,
      concurrency: config.appendConcurrency,
      maxQueued: config.appendQueueMax,
      timeoutMs: config.writeTimeoutMs,
    },
  });
  const users = createUserService(deps);
  const verifyToken = refusingErased(verifySignature, users);
  const a = config.assistant;
  const assistant = createAssistant({
    provider: options.provider ?? providerFor(config, log),
    tools: config.mcp && createMcpTools({ ...config.mcp, listTtlMs: config.mcp.toolsCacheMs, callTimeoutMs: a.toolTimeoutMs, log }),
    settings: {
      systemPrompt: a.systemPrompt,
      contextMessages: a.contextMessages,
      timeoutMs: a.timeoutMs,
      maxChars: a.maxReplyChars,
      toolTimeoutMs: a.toolTimeoutMs,
    },
    messages,
    store: createReplyStore(orm),
    publish,
    stopElsewhere: fanout.stopElsewhere,
    runningElsewhere: fanout.runningElsewhere,
    databaseHealthyForMs: database.healthyForMs,
    metrics,
    log,
    audit,
    timing: replyTiming(config.assistant.staleMs, options.assistantTiming),
  });
  fanout.answerStops(assistant.stopIfRunningHere);
  fanout.answerRunning(assistant.runningHere);
  const limits = createUserLimits({
    allowances: config.limits.allowances,
    redis: redis?.commands,
    prefix: config.redisPrefix,
    leaseShare: config.limits.leaseShare,
  });
  const sendMessage = createSendMessage({ limits, messages, assistant, publish, log, writeTimeoutMs: config.writeTimeoutMs });

  const { maxMessageChars } = config;
  const clientInfo = clientInfoOf({ recordAddress: config.recordClientAddress, address: clientAddress });
  const httpInflight = { count: 0 };
  const readiness = readinessOf({
    database,
    writesStalled: messages.writesStalled,
    redis,
    jwks,
    isClosing,
  });
  const app = createHttpApp({
    api: [
      { path: '/conversations', router: conversationRoutes({ conversations, publish, limits, maxMessageChars }) },
      { path: '/conversations', router: messageRoutes({ messages, sendMessage, limits, maxMessageChars, clientInfo }) },
      { path: '/me', router: accountRoutes({ users, orm, limits, audit, log, disconnectUser: fanout.disconnectUser }) },
      { path: '', router: seedRoutes({ messages, limits }) },
      { path: '', router: chatRoutes({ sendMessage, messages, maxMessageChars, timeoutMs: config.assistant.chatTimeoutMs, clientInfo }) },
    ],
    verifyToken,
    auth: config.auth,
    metrics,
    log,
    maxMessageChars,
    metricsToken: config.metricsToken,
    corsOrigins: config.corsOrigins,
    readiness,
    inflight: httpInflight,
    trustedProxies: config.trustedProxies,
  });
  const chat = serveChatNamespace(sockets.nsp, {
    verifyToken,
    clientInfo,
    roomsSubscribed: redis?.roomsSubscribed,
    maxSocketsPerUser: config.limits.maxSocketsPerUser,
    commands: {
      conversations,
      messages,
      sendMessage,
      assistant,
      publish,
      limits,
      maxInflightPerSocket: config.limits.maxInflightPerSocket,
      maxMessageChars,
      isClosing,
    },
    metrics,
    log,
  });
  const backpressure = watchBackpressure(sockets.nsp, { maxBufferedBytes: config.maxBufferedBytes, metrics, log });
  const httpServer = createServer(app);
  sockets.attach(httpServer);
  assistant.startSweeper();
  const stopRetention = config.retention
    ? scheduleRetention(createRetention(deps, config.retention), {
        intervalMs: config.retention.intervalMs,
        deleted: (broadcasts) => {
          publish(broadcasts);
          metrics.retentionDeleted.inc(broadcasts.length);
        },
        log,
      })
    : async () => undefined;

  let closed: Promise<void> | undefined;
  async function shutdown() {
    closing = true;
    const deadline = Date.now() + config.shutdownTimeoutMs;
    // Closing sockets, Redis and the pool takes a moment of its own, also when something hangs.
    const drainDeadline = deadline - Math.min(CLOSE_RESERVE_MS, config.shutdownTimeoutMs / 4);
    const left = (until: number) => Math.max(0, until - Date.now());
    log.info('shutting down: no new connections, finishing in-flight work');
    httpServer.close();
    httpServer.closeIdleConnections();
    // Units of work already started commit and get their ack; replies run to their end within the bound.
    while ((chat.inflight.count > 0 || httpInflight.count > 0) && Date.now() < drainDeadline) await sleep(20);
    await assistant.drain(left(drainDeadline));
    chat.stop();
    await waitAtMost(stopRetention(), left(deadline) / 4);
    database.stop();
    jwks?.stop();
    // A client that stopped reading never answers the WebSocket close: what has not closed by the deadline is cut.
    await waitAtMost(sockets.close(), left(deadline) / 2);
    sockets.terminate();
    backpressure.stop();
    httpServer.closeAllConnections();
    await waitAtMost(redis?.close() ?? Promise.resolve(), left(deadline) / 2);
    // Bounded: a pool still opening its first connection, or one whose server hangs, can keep close() waiting.
    await waitAtMost(orm.close(true), Math.max(250, left(deadline)));
    log.info('shut down');
  }

  return {
    config,
    httpServer,
    orm,
    services: { conversations, messages, users, sendMessage },
    sockets,
    fanout,
    assistant,
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

function providerFor(config: GatewayConfig, log: Logger): AssistantProvider | undefined {
  const a = config.assistant;
  switch (a.kind) {
    case 'echo':
      return createEchoProvider(a.delayMs);
    case 'openai':
      return createOpenAiProvider({ ...a.openai, maxSteps: a.maxSteps, stepTimeoutMs: a.stepTimeoutMs, log });
    case 'none':
      return undefined;
  }
}
