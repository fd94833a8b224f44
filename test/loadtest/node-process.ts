// A gateway node in a child process on a port that stays the same across restarts, as an operator's node does:
// a fault drill kills it (SIGKILL) and starts it again, and the tabs it served reconnect to the same URL.
// (test/helpers' spawnNode always takes a fresh port, which would leave those tabs knocking on a closed door.)
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type Env = Record<string, string | undefined>;

export interface NodeProcess {
  url: string;
  port: number;
  pid: number;
  /** SIGKILL by default; resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** A port free right now (the kernel's choice), to pin a node to across its restarts. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Runs `node src/server.ts` with exactly `env` on `port`; resolves once it logs 'listening'. */
export async function startNodeProcess(env: Env, port: number, timeoutMs = 30_000): Promise<NodeProcess> {
  const cleanEnv = Object.fromEntries(
    Object.entries({ PATH: process.env.PATH, ...env, LOG_LEVEL: 'info', PORT: String(port), HOST: '127.0.0.1' }).filter(
      ([, v]) => v !== undefined,
    ),
  ) as NodeJS.ProcessEnv;
  const child = spawn(process.execPath, ['src/server.ts'], { cwd: ROOT, env: cleanEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node on port ${port} did not listen in time; stderr: ${stderr}`)), timeoutMs);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`node on port ${port} exited before listening; stderr: ${stderr}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.includes('"msg":"listening"')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
