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
  },
});
