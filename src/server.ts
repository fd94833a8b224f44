// Entry point: reads the environment, builds the gateway, listens, and shuts down gracefully on SIGTERM/SIGINT.
// Production runs `node src/server.ts` directly: npm does not pass SIGTERM on to its child.
import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig } from './config.ts';
import { createGateway } from './gateway.ts';
import { createLogger } from './observability/logger.ts';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(`Usage: node src/server.ts   (npm start builds the widget first)

Starts one gateway node. Everything is configured through the environment (the README's Configuration table):
PORT, HOST, DATABASE_URL (unset: the embedded database under PGLITE_DIR), REDIS_URL, JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL,
CORS_ORIGINS, ASSISTANT, LOG_LEVEL and the limits. SIGTERM or SIGINT shuts it down gracefully.`);
  process.exit(0);
}

let config;
try {
  config = loadConfig(process.env, () => randomBytes(48).toString('base64url'));
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`chat-gateway: ${err.message}`);
    process.exit(2);
  }
  throw err;
}

const log = createLogger(config.logLevel, { node: config.nodeId });
if (config.auth.demo) {
  log.warn(
    '!!! DEMO MODE: none of JWT_SECRET, JWT_PUBLIC_KEY and JWT_JWKS_URL is set. Tokens are signed with a secret made up at start-up, ' +
      'anyone can get one for any user name at POST /api/demo/token, and they stop working at restart. Never run this way in production. !!!',
  );
}

let gateway: Awaited<ReturnType<typeof createGateway>>;
let port: number;
try {
  gateway = await createGateway(config, { log });
  port = await gateway.listen();
} catch (err) {
  // A missing database, a refused connection or a port in use: one line that says so, and a non-zero exit
  // (pino flushes what it buffered as the process exits).
  log.fatal({ err }, `could not start: ${(err as Error).message}`);
  process.exit(1);
}
log.info(
  { port, host: config.host, database: config.databaseUrl ? 'postgresql' : `pglite:${config.pgliteDir}`, redis: Boolean(config.redisUrl) },
  'listening',
);

let signalled = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (signalled) return;
    signalled = true;
    log.info({ signal }, 'signal received');
    // The shutdown bounds each of its steps; should something still hold the process, it ends anyway.
    setTimeout(() => {
      log.error({ boundMs: config.shutdownTimeoutMs }, 'shutdown did not end within its bound; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + 5_000).unref();
    gateway.close().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
