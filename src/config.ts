import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';
import type { McpServer } from './assistant/mcp.ts';
import { authConfig, type AuthConfig } from './auth/keys.ts';
import type { Allowance, Budget } from './limits/user-limits.ts';
import { parseRedisTarget } from './realtime/redis-target.ts';
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

/** A system prompt is sent with every model call: a longer one is a mistake (a wrong file), not a prompt. */
const SYSTEM_PROMPT_MAX_CHARS = 100_000;
/** HS256 keys shorter than the hash output are brute-forceable (RFC 7518 §3.2); the MCP servers refuse them too. */
const MCP_SECRET_MIN_BYTES = 32;
const MCP_SERVER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** `MCP_SERVERS`: `name=url` entries separated by commas, e.g. `todo=http://todo-mcp:4000/mcp,crm=https://crm.example.com/mcp`. */
function parseMcpServers(value: string, ctx: z.RefinementCtx): McpServer[] {
  const servers: McpServer[] = [];
  for (const entry of value
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const at = entry.indexOf('=');
    const name = entry.slice(0, at).trim();
    const url = entry.slice(at + 1).trim();
    if (at < 1 || !MCP_SERVER_NAME.test(name)) {
      ctx.addIssue({ code: 'custom', message: `"${entry}": expected name=url, the name of letters, digits, ".", "_" or "-"` });
    } else if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
      ctx.addIssue({ code: 'custom', message: `"${name}": its URL must be http:// or https://` });
    } else if (servers.some((s) => s.name === name)) {
      ctx.addIssue({ code: 'custom', message: `"${name}" is named twice` });
    } else {
      servers.push({ name, url });
    }
  }
  return servers;
}

/** Every environment variable the gateway reads, with its default. The README lists the same table. */
const EnvSchema = z.object({
  PORT: int(3000),
  // Unset: every interface, or only this machine's in demo mode (anyone who reaches a demo gateway can sign in as anyone).
  HOST: z.string().optional(),
  DATABASE_URL: z.string().min(1).optional(),
  PGLITE_DIR: z.string().default('./data'),
  // Quoted into SQL (search_path, create schema): a plain identifier only.
  DATABASE_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case PostgreSQL identifier (letters, digits, underscore)')
    .default('public'),
  REDIS_URL: z.string().min(1).optional(),
  NODE_ID: z.string().min(1).optional(),
  JWT_SECRET: z.string().optional(),
  JWT_SECRET_KID: z.string().min(1).max(255).optional(),
  JWT_SECRET_PREVIOUS: z.string().optional(),
  JWT_SECRET_PREVIOUS_KID: z.string().min(1).max(255).optional(),
  JWT_PUBLIC_KEY: z.string().optional(),
  JWT_JWKS_URL: z.string().optional(),
  JWT_JWKS_REFRESH_S: int(600, 1),
  // At least a second: below that, a flood of tokens with made-up kids would have the provider's endpoint hammered.
  JWT_JWKS_COOLDOWN_S: int(30, 1),
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
  ASSISTANT_SYSTEM_PROMPT: z.string().max(SYSTEM_PROMPT_MAX_CHARS).optional(),
  ASSISTANT_SYSTEM_PROMPT_FILE: z.string().optional(),
  // history:get's own page bound: the context is read as one page.
  ASSISTANT_CONTEXT_MESSAGES: int(50, 1).pipe(z.number().max(200)),
  ASSISTANT_MAX_STEPS: int(5, 1).pipe(z.number().max(50)),
  ASSISTANT_STEP_TIMEOUT_MS: int(60_000, 1),
  ASSISTANT_TOOL_TIMEOUT_MS: int(30_000, 1),
  ASSISTANT_MAX_REPLY_CHARS: int(32_000, 1),
  MCP_SERVERS: z.string().transform(parseMcpServers).optional(),
  MCP_TOKEN_SECRET: z.string().optional(),
  MCP_TOOLS_CACHE_MS: int(60_000, 0),
  MAX_MESSAGE_CHARS: int(10_000, 1),
  // What the node may hold for one client connection that does not take what it is sent (realtime/backpressure.ts).
  MAX_BUFFERED_BYTES: int(1024 * 1024, 1024),
  MIGRATE_ON_START: bool.default(true),
  METRICS_TOKEN: z.string().min(1).optional(),
  AUDIT_LOG: z.string().min(1).optional(),
  RETENTION_DAYS: z.coerce.number().int().min(1).optional(),
  RETENTION_INTERVAL_MS: int(3_600_000, 1_000),
  RETENTION_BATCH: int(200, 1),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DB_POOL_MAX: int(20, 1),
  SEND_RATE_LIMIT: int(20, 1),
  SEND_RATE_WINDOW_S: int(10, 1),
  WRITE_RATE_LIMIT: int(30, 1),
  WRITE_RATE_WINDOW_S: int(10, 1),
  READ_RATE_LIMIT: int(300, 1),
  READ_RATE_WINDOW_S: int(10, 1),
  REFRESH_RATE_LIMIT: int(10, 1),
  REFRESH_RATE_WINDOW_S: int(60, 1),
  // Share of each per-user allowance a node takes from Redis at once and spends locally (limits/leases.ts).
  RATE_LIMIT_LEASE: z.coerce.number().min(0).max(0.5).default(0.1),
  MAX_INFLIGHT_PER_SOCKET: int(16, 1),
  HANDSHAKE_RATE_LIMIT: int(60, 1),
  HANDSHAKE_RATE_WINDOW_S: int(10, 1),
  TRUSTED_PROXIES: list.optional(),
  RECORD_CLIENT_ADDRESS: bool.default(false),
  MAX_SOCKETS_PER_USER: int(20, 1),
  SHUTDOWN_TIMEOUT_MS: int(10_000, 0),
  REDIS_ADAPTER: z.enum(['classic', 'sharded']).default('classic'),
  REDIS_SUBSCRIPTION_MODE: z.enum(['dynamic', 'static']).default('dynamic'),
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
  /** The PostgreSQL schema of every table of the gateway. */
  databaseSchema: string;
  redisUrl?: string;
  redisAdapter: 'classic' | 'sharded';
  /**
   * Sharded adapter: `dynamic` subscribes this node to a channel per room it holds sockets of, so it hears only
   * its own users' broadcasts; `static` puts every broadcast on one channel that every node hears.
   */
  redisSubscriptionMode: 'dynamic' | 'static';
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
    /** The system prompt, placeholders unfilled (`{{userId}}`, `{{date}}`); from the variable or the file. */
    systemPrompt?: string;
    /** Messages before the reply given to the provider. */
    contextMessages: number;
    /** Model calls per reply (a step: one model call and the tool calls it asks for). */
    maxSteps: number;
    stepTimeoutMs: number;
    toolTimeoutMs: number;
    /** Longest reply, in characters (code points): past it the reply ends failed (REPLY_TOO_LONG). */
    maxReplyChars: number;
  };
  /** Tools over MCP; absent without MCP_SERVERS. */
  mcp?: {
    servers: McpServer[];
    /** Signs the per-call tokens that tell each server which user a call acts for. */
    tokenSecret: string;
    /** How long a server's tool list is used before it is read again. */
    toolsCacheMs: number;
  };
  maxMessageChars: number;
  /** What one client connection may have waiting to be sent: past half its deltas are skipped, past it (5 s) or twice it, it is cut. */
  maxBufferedBytes: number;
  migrateOnStart: boolean;
  metricsToken?: string;
  logLevel: Env['LOG_LEVEL'];
  /** A file for the audit trail, apart from the application log (unset: the application log). */
  auditLog?: string;
  /** Conversations idle for this many days are deleted (unset: kept forever), checked every `intervalMs`. */
  retention?: { days: number; intervalMs: number; batchSize: number };
  dbPoolMax: number;
  /** Append transactions in flight at once per node (group commit: each takes every append queued when it starts). */
  appendConcurrency: number;
  /** Sends waiting for an append transaction on this node; past it a send is refused at once (UNAVAILABLE). */
  appendQueueMax: number;
  limits: {
    /** Per user, across every node and both doors. */
    allowances: Record<Budget, Allowance>;
    /** Share of each allowance a node takes from Redis at once (0: a round trip per command). */
    leaseShare: number;
    maxSocketsPerUser: number;
    /** Commands of one socket being handled at once; more are refused RATE_LIMITED at once. */
    maxInflightPerSocket: number;
    /** New connections per client address per window, on each node. */
    handshakes: Allowance;
  };
  /** Who may tell the client's address in X-Forwarded-For (express's `trust proxy` values: loopback, CIDRs…). */
  trustedProxies: string[];
  /** Whether a user message records the client's address (personal data: off unless the operator opts in). */
  recordClientAddress: boolean;
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
  if (!demoAllowed && makeDemoSecret && !e.JWT_SECRET && !e.JWT_PUBLIC_KEY && !e.JWT_JWKS_URL) {
    throw new ConfigError(
      'DATABASE_URL is set but no JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL: demo mode runs only on the embedded database',
    );
  }
  if (e.REDIS_URL) checkRedisUrl(e.REDIS_URL, e.REDIS_ADAPTER);
  if (e.ASSISTANT_SYSTEM_PROMPT && e.ASSISTANT_SYSTEM_PROMPT_FILE) {
    throw new ConfigError('ASSISTANT_SYSTEM_PROMPT and ASSISTANT_SYSTEM_PROMPT_FILE are both set: give one');
  }
  const systemPrompt = e.ASSISTANT_SYSTEM_PROMPT ?? (e.ASSISTANT_SYSTEM_PROMPT_FILE && readPrompt(e.ASSISTANT_SYSTEM_PROMPT_FILE));
  const mcp = e.MCP_SERVERS?.length
    ? { servers: e.MCP_SERVERS, tokenSecret: mcpSecret(e.MCP_TOKEN_SECRET), toolsCacheMs: e.MCP_TOOLS_CACHE_MS }
    : undefined;
  const auth = authConfig(
    {
      secret: e.JWT_SECRET,
      secretKid: e.JWT_SECRET_KID,
      previousSecret: e.JWT_SECRET_PREVIOUS,
      previousSecretKid: e.JWT_SECRET_PREVIOUS_KID,
      publicKey: e.JWT_PUBLIC_KEY,
      jwksUrl: e.JWT_JWKS_URL,
      jwksRefreshS: e.JWT_JWKS_REFRESH_S,
      jwksCooldownS: e.JWT_JWKS_COOLDOWN_S,
      algorithms: e.JWT_ALGORITHMS,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
    },
    demoAllowed,
  );
  return {
    port: e.PORT,
    host: e.HOST ?? (auth.demo ? '127.0.0.1' : '0.0.0.0'),
    nodeId: e.NODE_ID ?? `${hostname()}-${process.pid}`,
    databaseUrl: e.DATABASE_URL,
    pgliteDir: e.PGLITE_DIR,
    databaseSchema: e.DATABASE_SCHEMA,
    redisUrl: e.REDIS_URL,
    redisAdapter: e.REDIS_ADAPTER,
    redisSubscriptionMode: e.REDIS_SUBSCRIPTION_MODE,
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
      systemPrompt: systemPrompt || undefined,
      contextMessages: e.ASSISTANT_CONTEXT_MESSAGES,
      maxSteps: e.ASSISTANT_MAX_STEPS,
      stepTimeoutMs: e.ASSISTANT_STEP_TIMEOUT_MS,
      toolTimeoutMs: e.ASSISTANT_TOOL_TIMEOUT_MS,
      maxReplyChars: e.ASSISTANT_MAX_REPLY_CHARS,
    },
    mcp,
    maxMessageChars: e.MAX_MESSAGE_CHARS,
    maxBufferedBytes: e.MAX_BUFFERED_BYTES,
    migrateOnStart: e.MIGRATE_ON_START,
    metricsToken: e.METRICS_TOKEN,
    logLevel: e.LOG_LEVEL,
    auditLog: e.AUDIT_LOG,
    retention: e.RETENTION_DAYS ? { days: e.RETENTION_DAYS, intervalMs: e.RETENTION_INTERVAL_MS, batchSize: e.RETENTION_BATCH } : undefined,
    dbPoolMax: e.DB_POOL_MAX,
    appendConcurrency: e.APPEND_CONCURRENCY,
    appendQueueMax: e.APPEND_QUEUE_MAX,
    limits: {
      allowances: {
        send: { points: e.SEND_RATE_LIMIT, durationS: e.SEND_RATE_WINDOW_S },
        write: { points: e.WRITE_RATE_LIMIT, durationS: e.WRITE_RATE_WINDOW_S },
        read: { points: e.READ_RATE_LIMIT, durationS: e.READ_RATE_WINDOW_S },
        refresh: { points: e.REFRESH_RATE_LIMIT, durationS: e.REFRESH_RATE_WINDOW_S },
      },
      leaseShare: e.RATE_LIMIT_LEASE,
      maxSocketsPerUser: e.MAX_SOCKETS_PER_USER,
      maxInflightPerSocket: e.MAX_INFLIGHT_PER_SOCKET,
      handshakes: { points: e.HANDSHAKE_RATE_LIMIT, durationS: e.HANDSHAKE_RATE_WINDOW_S },
    },
    trustedProxies: e.TRUSTED_PROXIES ?? ['loopback'],
    recordClientAddress: e.RECORD_CLIENT_ADDRESS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    writeTimeoutMs: e.WRITE_TIMEOUT_MS,
    redisCommandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
    syncSpreadMs: e.SYNC_SPREAD_MS,
  };
}

function readPrompt(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `ASSISTANT_SYSTEM_PROMPT_FILE: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  if (text.length > SYSTEM_PROMPT_MAX_CHARS) {
    throw new ConfigError(`ASSISTANT_SYSTEM_PROMPT_FILE: ${path} holds ${text.length} characters; at most ${SYSTEM_PROMPT_MAX_CHARS}`);
  }
  return text.trim();
}

function mcpSecret(secret: string | undefined): string {
  if (!secret)
    throw new ConfigError('MCP_SERVERS is set but MCP_TOKEN_SECRET is not: the servers need it to know which user a call acts for');
  const bytes = Buffer.byteLength(secret);
  if (bytes < MCP_SECRET_MIN_BYTES)
    throw new ConfigError(`MCP_TOKEN_SECRET is ${bytes} bytes; at least ${MCP_SECRET_MIN_BYTES} are required`);
  return secret;
}

/** A Redis Cluster URL must be well formed, and needs the sharded adapter (SPUBLISH goes to the slot's master). */
function checkRedisUrl(url: string, adapter: 'classic' | 'sharded') {
  let target;
  try {
    target = parseRedisTarget(url);
  } catch (err) {
    throw new ConfigError(`REDIS_URL: ${(err as Error).message}`);
  }
  if (target.kind === 'cluster' && adapter !== 'sharded') {
    throw new ConfigError('REDIS_URL names a Redis Cluster (redis+cluster://): set REDIS_ADAPTER=sharded');
  }
}
