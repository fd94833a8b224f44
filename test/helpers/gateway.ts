// Starts a real gateway (createGateway from the composition root) on 127.0.0.1, port 0, with a config built
// by loadConfig from an explicit environment: nothing of the shell's environment leaks into a test.
import { afterAll, beforeAll } from 'vitest';
import jwt from 'jsonwebtoken';
import { loadConfig, type GatewayConfig } from '../../src/config.ts';
import { createGateway, type Gateway } from '../../src/gateway.ts';
import { signToken } from '../../src/auth/jwt.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

/** 48 bytes: above the 32-byte minimum loadConfig enforces. */
export const TEST_SECRET = 'integration-test-secret-0123456789abcdefghijklmn';

export type Env = Record<string, string | undefined>;

export interface TokenOptions {
  /** Lifetime in seconds (default 3600). */
  expiresInS?: number;
  issuer?: string;
  audience?: string;
}

export interface StartedGateway {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  gateway: Gateway;
  config: GatewayConfig;
  /** A valid HS256 token for `sub`, with the gateway's issuer and audience unless overridden. */
  tokenFor(sub: string, opts?: TokenOptions): string;
  close(): Promise<void>;
}

/** The environment every test gateway starts from; overrides win. */
export function baseEnv(overrides: Env = {}): Env {
  return {
    JWT_SECRET: TEST_SECRET,
    ASSISTANT: 'none',
    LOG_LEVEL: 'silent',
    HOST: '127.0.0.1',
    PORT: '0',
    MIGRATE_ON_START: 'true',
    NODE_ID: 'test-node',
    SHUTDOWN_TIMEOUT_MS: '5000',
    // Tests post many messages as one user; the rate limit has its own test with a small value.
    SEND_RATE_LIMIT: '100000',
    // Many tabs from one address, and many reads and writes by one user: the limits have tests of their own.
    HANDSHAKE_RATE_LIMIT: '100000',
    READ_RATE_LIMIT: '100000',
    WRITE_RATE_LIMIT: '100000',
    ...overrides,
  };
}

export async function startGateway(env: Env, options: { makeDemoSecret?: () => string } = {}): Promise<StartedGateway> {
  if (!env.DATABASE_URL && !env.PGLITE_DIR) {
    // The default PGLITE_DIR is ./data, the developer's own embedded database: never touch it from a test.
    throw new Error('startGateway needs DATABASE_URL (a test database) or PGLITE_DIR (a temporary directory)');
  }
  const config = loadConfig(baseEnv(env), options.makeDemoSecret);
  const gateway = await createGateway(config);
  let port: number;
  try {
    // Wait until the ORM's pool exists: closing it while the first query is still creating the pool (the
    // gateway's start-up sweep) never resolves (see test/ops/shutdown.test.ts). Tests of anything else
    // must not hang on that.
    await gateway.orm.em.fork().execute('select 1');
    port = await gateway.listen(0, '127.0.0.1');
  } catch (err) {
    await gateway.close();
    throw err;
  }
  const secret = config.auth.kind === 'secret' ? config.auth.key : undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    gateway,
    config,
    tokenFor(sub, opts = {}) {
      if (!secret || !config.auth.algorithms.includes('HS256')) throw new Error('tokenFor needs an HS256 gateway');
      return signToken(secret, sub, {
        expiresInS: opts.expiresInS,
        issuer: opts.issuer ?? config.auth.issuer,
        audience: opts.audience ?? config.auth.audience,
      });
    },
    close: () => gateway.close(),
  };
}

/** Signs arbitrary claims with the test secret (or another key), for the malformed tokens auth tests need. */
export function signRaw(claims: Record<string, unknown>, key: string = TEST_SECRET, options: jwt.SignOptions = {}): string {
  return jwt.sign(claims, key, { algorithm: 'HS256', ...options });
}

/**
 * A fresh database and one gateway on it for the whole test file (migrated at start, closed and dropped
 * after). `onReady` hands both to the file's own variables.
 */
export function gatewayOnFreshDatabase(onReady: (started: { db: TestDatabase; gateway: StartedGateway }) => void, env: Env = {}): void {
  let db: TestDatabase | undefined;
  let gateway: StartedGateway | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
    gateway = await startGateway({ DATABASE_URL: db.url, ...env });
    onReady({ db, gateway });
  });
  afterAll(async () => {
    await gateway?.close();
    await db?.drop();
  });
}
