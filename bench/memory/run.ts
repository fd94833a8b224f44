// `npm run bench:memory [-- sockets]`: the memory stage of `npm run bench` on its own (see HELP).
import { Cleanup, cleanUpOnExit } from '../lib/cleanup.ts';
import { exitWithUsageError, readCommandLine } from '../lib/cli.ts';
import { measureSocketMemory } from './measure.ts';

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

const HELP = `Usage: npm run bench:memory [-- [sockets]]

Heap and RSS per idle authenticated socket on one gateway node: starts the node (with --expose-gc) and client
processes that open [sockets] sockets (default 19000, one user each; a process may hold 20,000 descriptors here),
and prints the difference against the same node before the sockets, after forced GC, as JSON. The node and the
client processes are stopped at the end, also on Ctrl-C, SIGTERM or a failure.

Options
  -h, --help        this text

Environment
  DATABASE_URL      the node's database (default ${DEFAULT_DATABASE_URL}); the node migrates it on start
  HEAP_SNAPSHOT     a path: the node writes heap snapshots <path>.base (before) and <path> (with the sockets)

Example
  npm run bench:memory -- 5000
`;

const [socketsArg] = readCommandLine('bench:memory', HELP, { maxPositionals: 1 });
const sockets = Number(socketsArg ?? 19_000);
if (!Number.isInteger(sockets) || sockets < 1) exitWithUsageError('bench:memory', `sockets must be a positive integer, got ${socketsArg}`);

const say = (line: string) => process.stderr.write(`${line}\n`);
const cleanup = new Cleanup(say);
cleanUpOnExit(cleanup, say);
try {
  const result = await measureSocketMemory({ sockets, databaseUrl: process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL, cleanup });
  console.log(JSON.stringify(result, null, 2));
} catch (err) {
  process.exitCode = 1;
  say(`bench:memory failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  await cleanup.run();
}
