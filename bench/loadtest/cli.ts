/**
 * `npm run loadtest -- [options]` (see `--help` and docs/load-testing.md).
 * Exit code: 0 when the verification passed, 1 on any loss, duplicate or storage mismatch (or, with
 * `--verify converged`, a tab that did not converge on storage), 2 on a usage or setup error. `main()` returns the
 * code instead of exiting, so tests can drive the CLI in-process.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HELP, parseCli, UsageError } from './options.ts';
import { formatTable } from './report.ts';
import { runLoad, SetupError, type RunHooks } from './run.ts';

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env?: NodeJS.ProcessEnv;
}

const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

export async function main(argv: string[], io: CliIo = processIo, hooks: RunHooks = {}): Promise<number> {
  let options;
  try {
    options = parseCli(argv, io.env ?? process.env);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`loadtest: ${err.message}\n(try --help)\n`);
      return 2;
    }
    throw err;
  }
  if (options === null) {
    io.out(HELP);
    return 0;
  }
  try {
    const report = await runLoad(options, hooks);
    io.out(options.jsonOnly ? `${JSON.stringify(report, null, 2)}\n` : `${formatTable(report)}\n`);
    return report.exitCode;
  } catch (err) {
    if (err instanceof UsageError || err instanceof SetupError) {
      io.err(`loadtest: ${err.message}\n`);
      return 2;
    }
    io.err(`loadtest: failed: ${(err as Error).stack ?? String(err)}\n`);
    return 2;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // First Ctrl-C: stop sending, then drain, verify and report as usual. Second: quit at once.
  const stop = new AbortController();
  process.on('SIGINT', () => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort();
    process.stderr.write('\nloadtest: stopping the sending; draining, verifying and reporting (Ctrl-C again to quit now)\n');
  });
  const code = await main(process.argv.slice(2), processIo, { signal: stop.signal });
  process.exitCode = code;
  // Sockets and pools are closed by then; should a handle linger anyway, the exit code still gets out.
  setTimeout(() => process.exit(code), 2000).unref();
}
