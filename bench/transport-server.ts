// BENCH ONLY — the transport ceiling. The same Socket.IO server, handshake (JWT), payload validation and Redis
// adapter fan-out as the gateway, answering message:send with the same ack and broadcast shapes, but with
// persistence switched off (seqs come from a counter in this process). It is its own entry file under bench/,
// started only by `npm run bench`; nothing in src/ can reach it.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { Server } from 'socket.io';
import { v7 as uuidv7 } from 'uuid';
import { bearerToken, createTokenVerifier } from '../src/auth/jwt.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createMetrics } from '../src/observability/metrics.ts';
import { commandSchemas } from '../src/shared/commands.ts';
import { createRedisClients } from '../src/realtime/redis.ts';
import { userRoom, type MessageDto } from '../src/shared/events.ts';

const config = loadConfig(process.env);
const log = createLogger(config.logLevel, { node: config.nodeId, bench: 'transport' });
const verifyToken = createTokenVerifier(config.auth);
const schemas = commandSchemas(config.maxMessageChars);
const httpServer = createServer((_req, res) => res.writeHead(404).end());
const io = new Server(httpServer, { maxHttpBufferSize: config.maxMessageChars * 6 + 4096, serveClient: false });
const redis = config.redisUrl
  ? createRedisClients(config.redisUrl, { commandTimeoutMs: config.redisCommandTimeoutMs, log, metrics: createMetrics(config.nodeId) })
  : undefined;
if (redis) {
  io.adapter(
    config.redisAdapter === 'sharded'
      ? createShardedAdapter(redis.pub, redis.sub, { channelPrefix: 'chat-bench' })
      : createAdapter(redis.pub, redis.sub, { key: 'chat-bench' }),
  );
}
const nsp = io.of('/chat');
const seqs = new Map<string, number>();

nsp.use(async (socket, next) => {
  try {
    const identity = await verifyToken(
      (socket.handshake.auth as { token?: string }).token ?? bearerToken(socket.handshake.headers.authorization),
    );
    socket.data.userId = identity.userId;
    next();
  } catch {
    next(Object.assign(new Error('unauthorized'), { data: { code: 'UNAUTHORIZED' } }));
  }
});

nsp.on('connection', (socket) => {
  const userId: string = socket.data.userId;
  socket.join(userRoom(userId));
  socket.on('conversation:create', (_payload: unknown, ack: (r: unknown) => void) => {
    const now = new Date().toISOString();
    ack({ ok: true, data: { conversation: { id: uuidv7(), title: null, lastSeq: 0, createdAt: now, updatedAt: now } } });
  });
  socket.on('message:send', (payload: unknown, ack: (r: unknown) => void) => {
    const parsed = schemas['message:send'].safeParse(payload);
    if (!parsed.success || !parsed.data.conversationId) {
      ack({ ok: false, error: { code: 'VALIDATION', message: 'invalid' } });
      return;
    }
    const p = parsed.data;
    const conversationId = p.conversationId!;
    const seq = (seqs.get(conversationId) ?? 0) + 1;
    seqs.set(conversationId, seq);
    const now = new Date().toISOString();
    const message: MessageDto = {
      id: uuidv7(),
      conversationId,
      seq,
      role: 'user',
      status: 'complete',
      content: p.content,
      metadata: null,
      clientMessageId: p.clientMessageId,
      createdAt: now,
      updatedAt: now,
    };
    const conversation = { id: conversationId, title: null, lastSeq: seq, createdAt: now, updatedAt: now };
    ack({ ok: true, data: { message, conversation } });
    nsp.to(userRoom(userId)).emit('message:created', { message });
  });
});

httpServer.listen(config.port, config.host, () => {
  log.info({ port: (httpServer.address() as AddressInfo).port }, 'listening');
});
process.on('SIGTERM', () => {
  io.close();
  void redis?.close().finally(() => process.exit(0));
});
