// Entry point: reads the environment, starts the server, and shuts down gracefully on SIGTERM/SIGINT.
// Containers should run `node src/main.ts` directly: npm does not pass SIGTERM on to its child.
import { createTodoMcp, MCP_PATH } from './app.ts';
import { ConfigError, loadConfig, USAGE } from './config.ts';
import { createLogger } from './log.ts';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}

let config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`todo-mcp: ${err.message}\n\n${USAGE}`);
    process.exit(2);
  }
  throw err;
}

const log = createLogger();
let todo: Awaited<ReturnType<typeof createTodoMcp>>;
let port: number;
try {
  todo = await createTodoMcp(config, log);
  port = await todo.listen(config.port, config.host);
} catch (err) {
  log.error(`could not start: ${(err as Error).message}`, { err });
  process.exit(1);
}

let signalled = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (signalled) return;
    signalled = true;
    log.info('signal received', { signal });
    todo.close().then(
      () => {
        log.info('shut down');
        process.exit(0);
      },
      (err) => {
        log.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  });
}

// Only now: whoever waits for this line may send SIGTERM at once, and the handlers above must be in place.
const database = 'url' in config.database ? 'postgresql' : `pglite:${config.database.pgliteDir}`;
log.info('listening', { port, host: config.host, path: MCP_PATH, database, audience: config.token.audience });
