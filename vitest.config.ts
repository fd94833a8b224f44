import { defineConfig } from 'vitest/config';

// Integration tests talk to the machine's real PostgreSQL (a fresh database per file) and real HTTP on
// loopback. Files run in child processes (one gateway, pool and PGlite per file), two at a time: the
// machines have 2 cores, and PGlite plus PostgreSQL under more parallel files only slows everything down.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Installs Chromium and nginx from Debian's packages when the tests that need them would run without them.
    globalSetup: ['test/setup/system-packages.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Only with --coverage (`npm run test:coverage`): `npm test` runs without it.
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      exclude: [
        // The widget runs in Chromium, loaded from the built bundle (test/browser): V8 coverage of the browser is not
        // collected, and the Node workers never load these files. Covered by the browser tests, not measured.
        'src/widget/**',
        // Entry points, run only as child processes: `node src/server.ts` (test/ops/sigterm.test.ts, the fault drills,
        // the load test's nodes), `node src/retention.ts` (test/store/retention.test.ts) and `node src/migrate.ts`
        // (docker-compose's one-shot job; what it calls, initOrm's migrator, is measured in process). Vitest's V8
        // provider measures its own workers only: a spawned process is not measured (vitest-dev/vitest#7064).
        'src/server.ts',
        'src/migrate.ts',
        'src/retention.ts',
      ],
      reporter: ['text', 'text-summary', 'json-summary'],
      reportsDirectory: 'coverage',
      // A failing test still leaves its report: what the rest of the suite covers is worth seeing.
      reportOnFailure: true,
    },
  },
});
