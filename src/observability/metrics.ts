import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Metrics of one gateway instance; a registry of its own so several gateways can live in one process (tests). */
export function createMetrics(nodeId: string) {
  const registry = new Registry();
  let socketCount = () => 0;
  registry.setDefaultLabels({ node: nodeId });
  collectDefaultMetrics({ register: registry });
  const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  return {
    registry,
    /** Where the connected-sockets gauge reads its value when scraped. */
    countSockets(count: () => number) {
      socketCount = count;
    },
    httpRequests: new Counter({
      name: 'chat_http_requests_total',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'chat_http_request_duration_seconds',
      help: 'HTTP request latency by method and route',
      labelNames: ['method', 'route'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    messagesPersisted: new Counter({
      name: 'chat_messages_persisted_total',
      help: 'Messages committed to the database, by role',
      labelNames: ['role'] as const,
      registers: [registry],
    }),
    appendBatches: new Counter({
      name: 'chat_append_batches_total',
      help: 'Attempts at writing a batch of messages, by outcome: committed, repeated_key (wrote nothing, written again), conflict or deadlock (rolled back, written again), failed',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    retentionDeleted: new Counter({
      name: 'chat_retention_deleted_total',
      help: 'Conversations deleted for having had no activity for RETENTION_DAYS',
      registers: [registry],
    }),
    dbErrors: new Counter({
      name: 'chat_db_errors_total',
      help: 'Database errors by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    socketsConnected: new Gauge({
      name: 'chat_sockets_connected',
      help: 'Open Socket.IO connections on this node',
      registers: [registry],
      collect() {
        this.set(socketCount());
      },
    }),
    slowConsumers: new Counter({
      name: 'chat_slow_consumers_total',
      help: 'Connections whose client did not take what it was sent: deltas skipped (once per episode) or disconnected',
      labelNames: ['action'] as const,
      registers: [registry],
    }),
    socketEvents: new Counter({
      name: 'chat_socket_events_total',
      help: 'Client events by name and outcome (ok or error code)',
      labelNames: ['event', 'outcome'] as const,
      registers: [registry],
    }),
    ackDuration: new Histogram({
      name: 'chat_socket_ack_duration_seconds',
      help: 'Time from a client event to its acknowledgement',
      labelNames: ['event'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    assistantFirstDelta: new Histogram({
      name: 'chat_assistant_first_delta_seconds',
      help: 'Time from the user message commit to the first assistant delta',
      buckets: latencyBuckets,
      registers: [registry],
    }),
    assistantTotal: new Histogram({
      name: 'chat_assistant_reply_seconds',
      help: 'Time from the user message commit to the end of the assistant reply',
      labelNames: ['status'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    handshakesRefused: new Counter({
      name: 'chat_handshakes_refused_total',
      help: 'Refused connections by reason: origin, rate_limited, unauthorized, token_expired, too_many_connections, unsupported_protocol, namespace',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    assistantToolCalls: new Counter({
      name: 'chat_assistant_tool_calls_total',
      help: 'Tool calls of assistant replies, by tool and outcome (complete, or why it failed)',
      labelNames: ['tool', 'outcome'] as const,
      registers: [registry],
    }),
    redisConnected: new Gauge({
      name: 'chat_redis_connected',
      help: 'Whether each Redis connection (pub, sub, commands) is up: 0 means fan-out between nodes is degraded',
      labelNames: ['client'] as const,
      registers: [registry],
    }),
    redisPublishesLost: new Counter({
      name: 'chat_redis_publishes_lost_total',
      help: 'Broadcasts to other nodes that Redis did not take (their tabs are told to catch up once it does)',
      registers: [registry],
    }),
    redisMessagesReceived: new Counter({
      name: 'chat_redis_messages_received_total',
      help: "Messages this node's subscriber received from Redis (broadcasts, requests and answers of the other nodes), whether or not a socket here wanted them",
      registers: [registry],
    }),
    redisBytesReceived: new Counter({
      name: 'chat_redis_bytes_received_total',
      help: "Payload bytes of the messages this node's subscriber received from Redis",
      registers: [registry],
    }),
    redisPublishes: new Counter({
      name: 'chat_redis_publishes_total',
      help: 'Publishes of this node to Redis, by kind: broadcast (to sockets), ack (a broadcast expecting acknowledgements), request (to every node), response (to one node)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    redisSubscriptions: new Gauge({
      name: 'chat_redis_subscriptions',
      help: 'Redis channels this node holds on its subscriber (with REDIS_SUBSCRIPTION_MODE=dynamic, one per room with a socket here)',
      registers: [registry],
    }),
    redisResubscriptions: new Counter({
      name: 'chat_redis_resubscriptions_total',
      help: 'Channels subscribed again after the subscriber reconnected to Redis',
      registers: [registry],
    }),
    syncRequired: new Counter({
      name: 'chat_sync_required_total',
      help: 'Times tabs were told to catch up after lost fan-out, by scope (this node, or every node)',
      labelNames: ['scope'] as const,
      registers: [registry],
    }),
    adapterErrors: new Counter({
      name: 'chat_adapter_errors_total',
      help: 'Errors of the Redis adapter and Redis clients',
      labelNames: ['client'] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
