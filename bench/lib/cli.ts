/**
 * The command line and environment of the bench programs. Everything here runs before a program touches anything,
 * so `--help` and a mistake cost nothing: no database, no server. Usage errors exit 2, as the load tester's do.
 */
import { parseArgs } from 'node:util';

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Prints the problem and exits 2. */
export function exitWithUsageError(program: string, message: string): never {
  process.stderr.write(`${program}: ${message}\n(try --help)\n`);
  process.exit(2);
}

/**
 * Reads the arguments: `-h`/`--help` prints `usage` and exits 0; an unknown option or a positional beyond
 * `maxPositionals` exits 2. Returns the positionals.
 */
export function readCommandLine(program: string, usage: string, { args = process.argv.slice(2), maxPositionals = 0 } = {}): string[] {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: maxPositionals > 0 });
  } catch (err) {
    exitWithUsageError(program, (err as Error).message);
  }
  if (parsed.values.help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  if (parsed.positionals.length > maxPositionals)
    exitWithUsageError(program, `unexpected argument '${parsed.positionals[maxPositionals]}'`);
  return parsed.positionals;
}

/** Runs `read` (a program's settings from its environment); a UsageError exits 2. */
export function settingsOrExit<T>(program: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof UsageError) exitWithUsageError(program, err.message);
    throw err;
  }
}

/** A number from the environment, `def` when unset or empty; UsageError when it is not one, or below `min`. */
export function numberFromEnv(env: NodeJS.ProcessEnv, name: string, def: number, { min = 0, integer = false } = {}): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) {
    throw new UsageError(`${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${raw}`);
  }
  return n;
}
