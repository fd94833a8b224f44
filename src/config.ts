import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const list = z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));
const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

/** Every environment variable the gateway reads, with its default. The README lists the same table. */
const EnvSchema = z.object({
  PORT: int(3000),
  HOST: z.string().default('0.0.0.0'),
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
}

export interface AuthConfig {
  /** HS secret or PEM public key, as configured; `demo` is true when neither was configured and a secret was made up. */
  key: string;
  /**
   * The same key, parsed once at start-up: tokens are verified with it. Given the string, jsonwebtoken would
   * parse it again for every token, first as a PEM public key, catching the failure (`npm run bench:jwt`).
   */
  keyObject: KeyObject;
  algorithms: string[];
  issuer?: string;
  audience?: string;
  demo: boolean;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the environment once, at start-up; a bad value stops the process with a clear message. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, makeDemoSecret?: () => string): GatewayConfig {
  // Empty strings count as unset, as in most deployment tools.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid environment:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    host: e.HOST,
    nodeId: e.NODE_ID ?? `${hostname()}-${process.pid}`,
    databaseUrl: e.DATABASE_URL,
    pgliteDir: e.PGLITE_DIR,
    redisUrl: e.REDIS_URL,
    redisAdapter: e.REDIS_ADAPTER,
    redisPrefix: e.REDIS_PREFIX,
    auth: authConfig(e, makeDemoSecret),
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
  };
}

const SYMMETRIC = ['HS256', 'HS384', 'HS512'];
const RSA = { types: ['rsa'] };
const RSA_PSS = { types: ['rsa', 'rsa-pss'] };
/** Each asymmetric algorithm, with the key type (and curve) it verifies with (RFC 7518 §3.3–3.5). */
const KEY_FOR_ALGORITHM: Record<string, { types: string[]; curve?: string }> = {
  RS256: RSA,
  RS384: RSA,
  RS512: RSA,
  PS256: RSA_PSS,
  PS384: RSA_PSS,
  PS512: RSA_PSS,
  ES256: { types: ['ec'], curve: 'prime256v1' },
  ES384: { types: ['ec'], curve: 'secp384r1' },
  ES512: { types: ['ec'], curve: 'secp521r1' },
};
const ASYMMETRIC = Object.keys(KEY_FOR_ALGORITHM);
/** HS256 keys shorter than the hash output are brute-forceable (RFC 7518 §3.2). */
const MIN_SECRET_BYTES = 32;

function authConfig(e: Env, makeDemoSecret?: () => string): AuthConfig {
  const common = { issuer: e.JWT_ISSUER, audience: e.JWT_AUDIENCE };
  if (e.JWT_SECRET && e.JWT_PUBLIC_KEY) {
    throw new ConfigError('set JWT_SECRET or JWT_PUBLIC_KEY, not both');
  }
  if (e.JWT_ALGORITHMS?.some((a) => a.toLowerCase() === 'none')) {
    throw new ConfigError('JWT_ALGORITHMS must never contain "none"');
  }
  if (e.JWT_ALGORITHMS?.length === 0) {
    throw new ConfigError('JWT_ALGORITHMS names no algorithm');
  }
  if (e.JWT_PUBLIC_KEY) {
    const bad = (e.JWT_ALGORITHMS ?? []).filter((a) => !ASYMMETRIC.includes(a));
    if (bad.length) throw new ConfigError(`JWT_ALGORITHMS ${bad.join(',')} cannot be used with JWT_PUBLIC_KEY`);
    // PEM keys are often passed on one line with literal \n.
    const key = e.JWT_PUBLIC_KEY.replace(/\\n/g, '\n').trim();
    const keyObject = parsePublicKey(key);
    // Unset, the algorithms are those of RS256 and ES256 that the key can verify.
    const algorithms = e.JWT_ALGORITHMS ?? ['RS256', 'ES256'].filter((a) => fits(keyObject, a));
    const unfit = algorithms.filter((a) => !fits(keyObject, a));
    if (unfit.length || algorithms.length === 0) {
      const curve = keyObject.asymmetricKeyDetails?.namedCurve;
      const what = `the ${keyObject.asymmetricKeyType}${curve ? ` ${curve}` : ''} key in JWT_PUBLIC_KEY`;
      throw new ConfigError(unfit.length ? `JWT_ALGORITHMS ${unfit.join(',')} cannot verify with ${what}` : `neither RS256 nor ES256 fits ${what}; set JWT_ALGORITHMS`);
    }
    return { ...common, key, keyObject, algorithms, demo: false };
  }
  const algorithms = e.JWT_ALGORITHMS ?? ['HS256'];
  const bad = algorithms.filter((a) => !SYMMETRIC.includes(a));
  if (bad.length) throw new ConfigError(`JWT_ALGORITHMS ${bad.join(',')} cannot be used with JWT_SECRET`);
  if (e.JWT_SECRET) {
    if (Buffer.byteLength(e.JWT_SECRET) < MIN_SECRET_BYTES) {
      throw new ConfigError(`JWT_SECRET is ${Buffer.byteLength(e.JWT_SECRET)} bytes; at least ${MIN_SECRET_BYTES} are required`);
    }
    // A public key used as an HMAC secret lets anyone who has it (everyone) sign tokens.
    if (parsesAsKey(e.JWT_SECRET)) {
      throw new ConfigError('JWT_SECRET holds a key in PEM form; a public key goes in JWT_PUBLIC_KEY');
    }
    return { ...common, key: e.JWT_SECRET, keyObject: createSecretKey(Buffer.from(e.JWT_SECRET)), algorithms, demo: false };
  }
  if (!makeDemoSecret) {
    throw new ConfigError('no JWT_SECRET or JWT_PUBLIC_KEY configured');
  }
  const secret = makeDemoSecret();
  return { ...common, key: secret, keyObject: createSecretKey(Buffer.from(secret)), algorithms: ['HS256'], demo: true };
}

/**
 * Parses JWT_PUBLIC_KEY. Otherwise a key that is not one, or that fits none of the algorithms, would start a
 * gateway that refuses every token without saying why.
 */
function parsePublicKey(pem: string): KeyObject {
  // A private key would parse (its public half is derived), but it has no place in a verifier's configuration.
  if (/PRIVATE KEY-----/.test(pem)) {
    throw new ConfigError('JWT_PUBLIC_KEY holds a private key; give the public key only');
  }
  try {
    return createPublicKey(pem);
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new ConfigError(`JWT_PUBLIC_KEY is not a public key in PEM form${code ? ` (${code})` : ''}`);
  }
}

/** Whether `key` can verify tokens signed with the asymmetric `algorithm`. */
function fits(key: KeyObject, algorithm: string): boolean {
  const need = KEY_FOR_ALGORITHM[algorithm];
  if (!need || !need.types.includes(key.asymmetricKeyType ?? '')) return false;
  return need.curve === undefined || key.asymmetricKeyDetails?.namedCurve === need.curve;
}

function parsesAsKey(text: string): boolean {
  try {
    createPublicKey(text);
    return true;
  } catch {
    return false;
  }
}
