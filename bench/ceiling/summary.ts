/** `npm run bench`'s closing summary and its JSON report under reports/. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { MemoryResult } from '../memory/measure.ts';
import type { Ceiling } from './measure.ts';
import { FIXED_RATE, TABS, USERS, type BenchSettings } from './options.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

export function printSummary(
  say: (line: string) => void,
  settings: BenchSettings,
  results: Ceiling[],
  memory: MemoryResult | undefined,
): void {
  const transport = results[0]!;
  say('\nsummary');
  for (const r of results) {
    say(
      `  ${r.mode.padEnd(30)} ceiling ${`${r.capped ? '≥' : ''}${Math.round(r.ceilingMsgPerS)}`.padStart(6)} msg/s` +
        `   at ${FIXED_RATE}/s: ack p99 ${r.fixed.ackP99.toFixed(1)} ms, fan-out p99 ${r.fixed.fanoutP99.toFixed(1)} ms${r.fixed.verified ? '' : ' (LOSS)'}`,
    );
  }
  for (const r of results.slice(1)) {
    const ratio = transport.ceilingMsgPerS > 0 ? r.ceilingMsgPerS / transport.ceilingMsgPerS : 0;
    // A ceiling that passed every step is only a lower bound, so the ratio is then a bound too, or unknown.
    const percent = `${(ratio * 100).toFixed(0)}%`;
    const last = `every step up to ${settings.rates.at(-1)} msg/s`;
    if (r.capped && transport.capped) say(`  ${r.mode}: ratio to the transport unknown, both passed ${last}`);
    else if (transport.capped) say(`  ${r.mode}: at most ${percent} of the transport ceiling (the transport passed ${last})`);
    else say(`  ${r.mode}: ${r.capped ? 'at least ' : ''}${percent} of the transport ceiling`);
  }
  if (memory) {
    say(
      `  memory per idle socket (${memory.sockets.toLocaleString('en')} sockets): heap ${(memory.heapPerSocketBytes / 1024).toFixed(1)} KB, ` +
        `RSS ${(memory.rssPerSocketBytes / 1024).toFixed(1)} KB`,
    );
  }
  mkdirSync(`${root}reports`, { recursive: true });
  const file = `${root}reports/bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(
    file,
    JSON.stringify(
      { users: USERS, tabs: TABS, stepS: settings.stepS, generator: 'same machine, same cores', cpus: cpus().length, results, memory },
      null,
      2,
    ),
  );
  say(`report: ${file}`);
}
