/**
 * Store benchmark (`npm run bench:store`): a printed report, not a test. What it measures, its targets and its
 * environment: bench/store/options.ts (or `npm run bench:store -- --help`).
 */
import { Cleanup, cleanUpOnExit } from './lib/cleanup.ts';
import { readCommandLine, settingsOrExit } from './lib/cli.ts';
import { runStoreBench } from './store/main.ts';
import { HELP, readStoreSettings } from './store/options.ts';
import { say } from './store/report.ts';

readCommandLine('bench:store', HELP);
const settings = settingsOrExit('bench:store', () => readStoreSettings(process.env));

const cleanup = new Cleanup(say);
cleanUpOnExit(cleanup, say);
try {
  await runStoreBench(settings, cleanup);
} catch (err) {
  process.exitCode = 1;
  // Once the cleanup has begun (a signal), the phase that it cut short fails as a matter of course.
  if (!cleanup.started) say(`\nbench:store failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  await cleanup.run();
}
// Exit explicitly: a gateway that did not close cleanly must not keep the process alive.
process.exit(process.exitCode ?? 0);
