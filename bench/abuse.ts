// `npm run bench:abuse`: how much one abusive user moves another user's latency. A victim reads history
// (sequential history:get, as a tab paging back) alone, then while an attacker on another socket fires a burst of
// 3,000 history:get of 200 messages at once; with the per-user allowances and the per-socket in-flight cap
// off (allowances of millions) and on (the defaults), alternated: off, on, on, off.
import { io, type Socket } from 'socket.io-client';
import { createGateway } from '../src/gateway.ts';
import { loadConfig } from '../src/config.ts';
import { signToken } from '../src/auth/jwt.ts';
import { createTestDatabase } from '../test/helpers/db.ts';
import { Cleanup } from './lib/cleanup.ts';
import { readCommandLine } from './lib/cli.ts';
import { LatencyRecorder, type LatencySummary } from './lib/latency.ts';

readCommandLine(
  'bench:abuse',
  `Usage: npm run bench:abuse [-- --help]

How much one abusive user moves another user's latency: the victim's history:get latency (p50, p99, max) alone and
during an attacker's burst of 3,000 history:get (limit 200) from one socket, with the per-user allowances and
the per-socket in-flight cap off and on (the defaults), alternated off, on, on, off. Needs PostgreSQL on
127.0.0.1 (a database chat_test_* is made and dropped). Reads no environment variable.

Options
  -h, --help    this text

Example
  npm run bench:abuse
`,
);

const SECRET = 'bench-abuse-secret-0123456789abcdefghijklmnopqrstuv';
const BURST = 3000;
const VICTIM_READS = 200;
const UNLIMITED = { READ_RATE_LIMIT: '100000000', WRITE_RATE_LIMIT: '100000000', MAX_INFLIGHT_PER_SOCKET: '1000000' };

type Ack = { ok: boolean; error?: { code: string }; data?: { conversation: { id: string } } };

const cleanup = new Cleanup();
process.once('SIGINT', () => void cleanup.run().then(() => process.exit(130)));

const db = await createTestDatabase();
cleanup.add('drop the database', () => db.drop());

function connect(url: string, user: string): Promise<Socket> {
  const socket = io(`${url}/chat`, { auth: { token: signToken(SECRET, user) }, transports: ['websocket'], reconnection: false });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

const ask = (socket: Socket, event: string, payload: unknown) => socket.timeout(60_000).emitWithAck(event, payload) as Promise<Ack>;

/** The victim's reads, one after another: `VICTIM_READS` of them, or for as long as `busy` runs if longer. */
async function victimReads(socket: Socket, conversationId: string, busy?: Promise<unknown>): Promise<LatencySummary> {
  const latency = new LatencyRecorder();
  let done = busy === undefined;
  void busy?.finally(() => {
    done = true;
  });
  for (let i = 0; i < VICTIM_READS || !done; i++) {
    const started = performance.now();
    await ask(socket, 'history:get', { conversationId, limit: 50 });
    latency.record(performance.now() - started);
  }
  return latency.summary();
}

async function run(limited: boolean) {
  const config = loadConfig({
    JWT_SECRET: SECRET,
    DATABASE_URL: db.url,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    ASSISTANT: 'none',
    ...(limited ? {} : UNLIMITED),
  });
  const gateway = await createGateway(config);
  const port = await gateway.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${port}`;
  try {
    const victim = await connect(url, `victim-${limited}`);
    const attacker = await connect(url, `attacker-${limited}`);
    const mine = (await ask(victim, 'conversation:create', { title: 'victim' })).data!.conversation.id;
    const theirs = (await ask(attacker, 'conversation:create', { title: 'attacker' })).data!.conversation.id;
    for (let i = 0; i < 50; i++) await ask(victim, 'message:send', { conversationId: mine, content: `m${i}`, clientMessageId: `v${i}` });
    for (let i = 0; i < 200; i++)
      await ask(attacker, 'message:send', { conversationId: theirs, content: `a${i}`, clientMessageId: `a${i}` });
    const alone = await victimReads(victim, mine);
    const burst = Promise.all(Array.from({ length: BURST }, () => ask(attacker, 'history:get', { conversationId: theirs, limit: 200 })));
    const during = await victimReads(victim, mine, burst);
    const answers = await burst;
    const refused = answers.filter((a) => !a.ok && a.error?.code === 'RATE_LIMITED').length;
    victim.close();
    attacker.close();
    return { alone, during, refused };
  } finally {
    await gateway.close();
  }
}

const rows: string[] = [];
for (const limited of [false, true, true, false]) {
  const r = await run(limited);
  rows.push(
    `| ${limited ? 'on ' : 'off'} | ${r.alone.p50Ms} / ${r.alone.p99Ms} / ${r.alone.maxMs} | ${r.during.p50Ms} / ${r.during.p99Ms} / ${r.during.maxMs} | ${r.refused} of ${BURST} |`,
  );
}
console.log('\nvictim history:get latency, ms (p50 / p99 / max); attacker: 3,000 history:get (limit 200) at once from one socket\n');
console.log('| limits | victim alone | victim during the burst | attacker refused |');
console.log('|---|---|---|---|');
for (const row of rows) console.log(row);
await cleanup.run();
