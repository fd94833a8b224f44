// Heap and RSS per idle authenticated socket on one node: `node bench/memory/run.ts [sockets]`.
// The node and the clients are separate processes (the node's heap holds only the server side). Figures are
// differences against the same node before the sockets, after forced GC. One process may hold at most
// 20,000 descriptors on these machines, so the node can hold a little under 20,000 sockets.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

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

export async function measureSocketMemory(options: { sockets: number; databaseUrl: string; perClientProcess?: number }): Promise<MemoryResult> {
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
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const { port } = await nextMessage<{ port: number }>(node);
    const url = `http://127.0.0.1:${port}`;
    // Warm up code paths (one socket, then gone) so the baseline holds the compiled code, not the sockets.
    await openClients(url, secret, 0, 50).then((c) => closeClients(c));
    if (process.env.HEAP_SNAPSHOT) {
      node.send(`snapshot:${process.env.HEAP_SNAPSHOT}.base`);
      await nextMessage(node);
    }
    node.send('measure');
    const baseline = await nextMessage<{ heapUsed: number; rss: number }>(node);

    const perProcess = options.perClientProcess ?? 9_500;
    const clients: ChildProcess[] = [];
    for (let first = 0; first < options.sockets; first += perProcess) {
      clients.push(...(await openClients(url, secret, 1_000 + first, Math.min(perProcess, options.sockets - first))));
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
    node.send('close');
    await new Promise((resolve) => node.once('exit', resolve));
  }
}

async function openClients(url: string, secret: string, first: number, count: number): Promise<ChildProcess[]> {
  const child = fork(here('./clients.ts'), [url, secret, String(first), String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await nextMessage(child);
  return [child];
}

async function closeClients(children: ChildProcess[]) {
  await Promise.all(
    children.map((child) => {
      child.send('close');
      return new Promise((resolve) => child.once('exit', resolve));
    }),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sockets = Number(process.argv[2] ?? 19_000);
  const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const result = await measureSocketMemory({ sockets, databaseUrl });
  console.log(JSON.stringify(result, null, 2));
}
