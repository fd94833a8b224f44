import { hostname } from 'node:os';
import { z } from 'zod';
import { authConfig, type AuthConfig } from './auth/keys.ts';
import { ConfigError } from './shared/errors.ts';

export { ConfigError };

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const list = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);
const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

/** Every environment variable the gateway reads, with its default. The README lists the same table. */
const EnvSchema = z.object({
  PORT: int(3000),
  // Unset: every interface, or only this machine's in demo mode (anyone who reaches a demo gateway can sign in as anyone).
  HOST: z.string().optional(),
  DATABASE_URL: z.string().min(1).optional(),
  PGLITE_DIR: z.string().default('./data'),
  REDIS_URL: z.string().min(1).optional(),
  NODE_ID: z.string().min(1).optional(),
  JWT_SECRET: z.string().optional(),
  JWT_PUBLIC_KEY: z.string().optional(),
  JWT_ALGORITHMS: list.optional(),
  JWT_ISSUER: z.string().min(1).optional(),
  JWT_AUDIENCE: z.string().min(1).optional(),
  CORS_ORIGINS: list.optional(),
  ASSISTANT: z.enum(['echo', 'openai', 'none']).default('echo'),
  ASSISTANT_DELAY_MS: int(30),
  ASSISTANT_TIMEOUT_MS: int(120_000, 1),
  OPENAI_BASE_URL: z.string().default('https://api.openai.com/v1'),
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_MODEL: z.string().default('gpt-4o-mini'),
  MAX_MESSAGE_CHARS: int(10_000, 1),
  // What the node may hold for one client connection that does not take what it is sent (realtime/backpressure.ts).
  MAX_BUFFERED_BYTES: int(1024 * 1024, 1024),
  MIGRATE_ON_START: bool.default(true),
  METRICS_TOKEN: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DB_POOL_MAX: int(20, 1),
  SEND_RATE_LIMIT: int(20, 1),
  SEND_RATE_WINDOW_S: int(10, 1),
  MAX_SOCKETS_PER_USER: int(20, 1),
  SHUTDOWN_TIMEOUT_MS: int(10_000, 0),
  REDIS_ADAPTER: z.enum(['classic', 'sharded']).default('classic'),
  REDIS_PREFIX: z.string().min(1).max(100).default('chat'),
  APPEND_CONCURRENCY: int(1, 1),
  APPEND_QUEUE_MAX: int(5_000, 1),
  // A dead node's reply must be marked failed within 30 s; the sweep runs every third of this bound.
  REPLY_STALE_MS: int(15_000, 500).pipe(z.number().max(22_000)),
  CHAT_TIMEOUT_MS: int(60_000, 1),
  // A write that cannot commit within this bound answers UNAVAILABLE (PostgreSQL's statement and lock timeouts too).
  WRITE_TIMEOUT_MS: int(5_000, 100),
  REDIS_COMMAND_TIMEOUT_MS: int(1_000, 50),
  SYNC_SPREAD_MS: int(3_000, 0),
});

export type Env = z.infer<typeof EnvSchema>;

export interface GatewayConfig {
  port: number;
  host: string;
  nodeId: string;
  databaseUrl?: string;
  pgliteDir: string;
  redisUrl?: string;
  redisAdapter: 'classic' | 'sharded';
  /** Prefix of every Redis channel and key: gateways with different prefixes share a Redis without meeting. */
  redisPrefix: string;
  auth: AuthConfig;
  corsOrigins?: string[];
  assistant: {
    kind: 'echo' | 'openai' | 'none';
    delayMs: number;
    timeoutMs: number;
    /** A streaming reply not saved for this long is taken as interrupted (its node died). */
    staleMs: number;
    /** How long POST /api/chat waits for the reply. */
    chatTimeoutMs: number;
    openai: { baseUrl: string; apiKey?: string; model: string };
  };
  maxMessageChars: number;
  /** What one client connection may have waiting to be sent: past half its deltas are skipped, past it (5 s) or twice it, it is cut. */
  maxBufferedBytes: number;
  migrateOnStart: boolean;
  metricsToken?: string;
  logLevel: Env['LOG_LEVEL'];
  dbPoolMax: number;
  /** Append transactions in flight at once per node (group commit: each takes every append queued when it starts). */
  appendConcurrency: number;
  /** Sends waiting for an append transaction on this node; past it a send is refused at once (UNAVAILABLE). */
  appendQueueMax: number;
  limits: {
    sendRate: number;
    sendRateWindowS: number;
    maxSocketsPerUser: number;
  };
  shutdownTimeoutMs: number;
  /** Longest a write may wait to commit before it answers UNAVAILABLE; also PostgreSQL's statement and lock timeouts. */
  writeTimeoutMs: number;
  /** Longest a Redis command may wait for its answer (a hung Redis must not hold a send). */
  redisCommandTimeoutMs: number;
  /** After lost fan-out, tabs are asked to catch up within this many ms, each at a random moment. */
  syncSpreadMs: number;
}

/** Reads the environment once, at start-up; a bad value stops the process with a clear message. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, makeDemoSecret?: () => string): GatewayConfig {
  // An empty secret is a mistake (a variable meant to be filled in), never a request for demo mode.
  if (env.JWT_SECRET === '') throw new ConfigError('JWT_SECRET is set but empty: give it a secret of at least 32 bytes, or unset it');
  // Empty strings count as unset, as in most deployment tools.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid environment:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  // Demo mode (a secret made up at start-up, tokens for any name) only for a try-out on the embedded database:
  // with DATABASE_URL set, a gateway without a key refuses to start rather than open real data to anyone.
  const demoAllowed = makeDemoSecret && !e.DATABASE_URL ? makeDemoSecret : undefined;
  if (!demoAllowed && makeDemoSecret && !e.JWT_SECRET && !e.JWT_PUBLIC_KEY) {
    throw new ConfigError('DATABASE_URL is set but no JWT_SECRET or JWT_PUBLIC_KEY: demo mode runs only on the embedded database');
  }
  const auth = authConfig(
    { secret: e.JWT_SECRET, publicKey: e.JWT_PUBLIC_KEY, algorithms: e.JWT_ALGORITHMS, issuer: e.JWT_ISSUER, audience: e.JWT_AUDIENCE },
    demoAllowed,
  );
  return {
    port: e.PORT,
    host: e.HOST ?? (auth.demo ? '127.0.0.1' : '0.0.0.0'),
    nodeId: e.NODE_ID ?? `${hostname()}-${process.pid}`,
    databaseUrl: e.DATABASE_URL,
    pgliteDir: e.PGLITE_DIR,
    redisUrl: e.REDIS_URL,
    redisAdapter: e.REDIS_ADAPTER,
    redisPrefix: e.REDIS_PREFIX,
    auth,
    corsOrigins: e.CORS_ORIGINS,
    assistant: {
      kind: e.ASSISTANT,
      delayMs: e.ASSISTANT_DELAY_MS,
      timeoutMs: e.ASSISTANT_TIMEOUT_MS,
      staleMs: e.REPLY_STALE_MS,
      chatTimeoutMs: e.CHAT_TIMEOUT_MS,
      openai: { baseUrl: e.OPENAI_BASE_URL, apiKey: e.OPENAI_API_KEY, model: e.OPENAI_MODEL },
    },
    maxMessageChars: e.MAX_MESSAGE_CHARS,
    maxBufferedBytes: e.MAX_BUFFERED_BYTES,
    migrateOnStart: e.MIGRATE_ON_START,
    metricsToken: e.METRICS_TOKEN,
    logLevel: e.LOG_LEVEL,
    dbPoolMax: e.DB_POOL_MAX,
    appendConcurrency: e.APPEND_CONCURRENCY,
    appendQueueMax: e.APPEND_QUEUE_MAX,
    limits: {
      sendRate: e.SEND_RATE_LIMIT,
      sendRateWindowS: e.SEND_RATE_WINDOW_S,
      maxSocketsPerUser: e.MAX_SOCKETS_PER_USER,
    },
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    writeTimeoutMs: e.WRITE_TIMEOUT_MS,
    redisCommandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
    syncSpreadMs: e.SYNC_SPREAD_MS,
  };
}
