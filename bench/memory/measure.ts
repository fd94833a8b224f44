// Heap and RSS per idle authenticated socket on one node (the memory stage of `npm run bench`, and
// `npm run bench:memory`). The node and the clients are separate processes (the node's heap holds only the
// server side). Figures are differences against the same node before the sockets, after forced GC. One process
// may hold at most 20,000 descriptors on these machines, so the node can hold a little under 20,000 sockets.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { stopChild, type Cleanup } from '../lib/cleanup.ts';

export interface MemoryResult {
  sockets: number;
  heapPerSocketBytes: number;
  rssPerSocketBytes: number;
  baseline: { heapUsed: number; rss: number };
  loaded: { heapUsed: number; rss: number };
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as T));
    child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
  });
}

/** Asked to close over IPC first, so the node closes its sockets and pools as in production. */
const closeGently = (child: ChildProcess) => stopChild(child, { ask: () => child.send('close'), graceMs: 15_000 });

export async function measureSocketMemory(options: {
  sockets: number;
  databaseUrl: string;
  /** Where the node and client processes are registered, so an interrupted run stops them. */
  cleanup: Cleanup;
  perClientProcess?: number;
}): Promise<MemoryResult> {
  const { cleanup } = options;
  const secret = randomBytes(32).toString('hex');
  const node = fork(here('./node.ts'), [], {
    execArgv: ['--expose-gc'],
    env: {
      ...process.env,
      JWT_SECRET: secret,
      DATABASE_URL: options.databaseUrl,
      REDIS_URL: '',
      ASSISTANT: 'none',
      LOG_LEVEL: 'warn',
      MAX_SOCKETS_PER_USER: '5',
      // Thousands of sockets from this machine's one address: the per-address budget is raised out of the way.
      HANDSHAKE_RATE_LIMIT: '1000000',
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const stopNode = cleanup.add(`memory node (pid ${node.pid})`, () => closeGently(node));
  try {
    const { port } = await nextMessage<{ port: number }>(node);
    const url = `http://127.0.0.1:${port}`;
    // Warm up code paths (one socket, then gone) so the baseline holds the compiled code, not the sockets.
    await openClients(cleanup, url, secret, 0, 50).then((c) => closeClients(c));
    if (process.env.HEAP_SNAPSHOT) {
      node.send(`snapshot:${process.env.HEAP_SNAPSHOT}.base`);
      await nextMessage(node);
    }
    node.send('measure');
    const baseline = await nextMessage<{ heapUsed: number; rss: number }>(node);

    const perProcess = options.perClientProcess ?? 9_500;
    const clients: Clients[] = [];
    for (let first = 0; first < options.sockets; first += perProcess) {
      clients.push(...(await openClients(cleanup, url, secret, 1_000 + first, Math.min(perProcess, options.sockets - first))));
    }
    if (process.env.HEAP_SNAPSHOT) {
      node.send(`snapshot:${process.env.HEAP_SNAPSHOT}`);
      await nextMessage(node);
    }
    node.send('measure');
    const loaded = await nextMessage<{ heapUsed: number; rss: number; sockets: number }>(node);
    await closeClients(clients);
    return {
      sockets: loaded.sockets,
      heapPerSocketBytes: Math.round((loaded.heapUsed - baseline.heapUsed) / loaded.sockets),
      rssPerSocketBytes: Math.round((loaded.rss - baseline.rss) / loaded.sockets),
      baseline: { heapUsed: baseline.heapUsed, rss: baseline.rss },
      loaded: { heapUsed: loaded.heapUsed, rss: loaded.rss },
    };
  } finally {
    await stopNode();
  }
}

/** One client process and the stop registered for it. */
type Clients = () => Promise<void>;

async function openClients(cleanup: Cleanup, url: string, secret: string, first: number, count: number): Promise<Clients[]> {
  const child = fork(here('./clients.ts'), [url, secret, String(first), String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const stop = cleanup.add(`memory clients (pid ${child.pid})`, () => closeGently(child));
  await nextMessage(child);
  return [stop];
}

async function closeClients(clients: Clients[]) {
  await Promise.all(clients.map((stop) => stop()));
}
