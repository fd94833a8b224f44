/** The processes `npm run bench` runs against: PostgreSQL and Redis (started if down) and its two nodes. */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stopChild, type Cleanup } from '../lib/cleanup.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface Node {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts `entry` (the gateway or the transport server; of another `checkout` of the project for an A/B run) on a free port and resolves once it logs that it listens.
 * Its stop is registered at spawn, not at listening: a node that is still starting when the run is interrupted
 * must be stopped too.
 */
export function startNode(
  entry: string,
  env: NodeJS.ProcessEnv,
  { nodeArgs, cleanup, checkout = root }: { nodeArgs: string[]; cleanup: Cleanup; checkout?: string },
): Promise<Node> {
  const child = spawn(`${checkout}node_modules/.bin/node`, [...nodeArgs, entry], {
    cwd: checkout,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stop = cleanup.add(`${entry} (pid ${child.pid})`, () => stopChild(child));
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      const match = buffer.match(/"port":(\d+)[^\n]*"msg":"listening"/);
      if (!match) return;
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      resolve({ url: `http://127.0.0.1:${match[1]}`, pid: child.pid!, stop });
    };
    child.stdout!.on('data', onData);
    child.once('error', (err) => void stop().finally(() => reject(err)));
    child.once('exit', (code) => void stop().finally(() => reject(new Error(`${entry} exited with ${code} before listening`))));
  });
}

/** Starts the machine's PostgreSQL and Redis if they are down, and waits up to 30 s for both. */
export async function ensureServices(say: (line: string) => void): Promise<void> {
  const ok = (cmd: string, args: string[]) => {
    try {
      execFileSync(cmd, args, { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (!ok('pg_isready', ['-q', '-h', '127.0.0.1'])) {
    say('starting PostgreSQL');
    for (const version of readdirSync('/etc/postgresql')) ok('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start']);
  }
  if (!ok('redis-cli', ['-h', '127.0.0.1', 'ping'])) {
    say('starting Redis');
    execFileSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no']);
  }
  for (let i = 0; i < 60 && !(ok('pg_isready', ['-q', '-h', '127.0.0.1']) && ok('redis-cli', ['-h', '127.0.0.1', 'ping'])); i++)
    await sleep(500);
}
