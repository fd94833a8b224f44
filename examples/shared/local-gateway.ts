// Runs this repository's gateway beside an example, so that each example starts with one command. It is not part
// of what an app copies: in production the gateway runs on its own (the README's production guide), configured
// with the same keys this passes it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const GATEWAY_ENTRY = fileURLToPath(new URL('../../src/server.ts', import.meta.url));

export interface LocalGateway {
  /** The gateway's base URL, e.g. `http://127.0.0.1:3000`. */
  url: string;
  /** Stops the gateway if this started it (SIGTERM: a graceful shutdown). */
  close(): Promise<void>;
}

/**
 * `GATEWAY_URL` set: that gateway, already running (configured by whoever started it). Otherwise a gateway started
 * here with `env` (its keys, `CORS_ORIGINS`…) on 127.0.0.1, port `GATEWAY_PORT` (default 3000, `0` for any free one),
 * on the embedded database under `dataDir` unless `DATABASE_URL` is set. Never in demo mode: `env` carries a key.
 */
export async function startLocalGateway(env: Record<string, string>, dataDir: string): Promise<LocalGateway> {
  if (process.env.GATEWAY_URL) return { url: process.env.GATEWAY_URL.replace(/\/+$/, ''), close: async () => {} };
  // The embedded database creates its own folder, but not the folders above it.
  if (!process.env.DATABASE_URL) mkdirSync(dataDir, { recursive: true });
  const child = spawn(process.execPath, [GATEWAY_ENTRY], {
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: process.env.GATEWAY_PORT ?? '3000',
      // info: its `listening` line says where it is; only its warnings and errors are shown.
      LOG_LEVEL: 'info',
      ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : { PGLITE_DIR: dataDir }),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.on('exit', () => child.kill('SIGTERM'));
  const port = await listeningPort(child);
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Reads the gateway's JSON log lines until it says where it listens; passes warnings and errors on. */
function listeningPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let port: number | undefined;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        let entry: { msg?: string; port?: number; level?: number };
        try {
          entry = JSON.parse(line);
        } catch {
          continue;
        }
        // pino's levels: 40 warn, 50 error, 60 fatal.
        if ((entry.level ?? 0) >= 40) console.error(`gateway: ${line}`);
        if (port === undefined && entry.msg === 'listening' && typeof entry.port === 'number') {
          port = entry.port;
          resolve(port);
        }
      }
    });
    child.once('exit', (code) => port === undefined && reject(new Error(`the gateway exited (${code}) before listening`)));
  });
}
