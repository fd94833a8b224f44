// Graceful shutdown in process: close() must always end, within its bound, whatever state the gateway is in.
// A node can be told to stop right after it started (a rolling deploy, a crash loop, an autoscaler), so
// this builds gateways with createGateway directly, without the test helper's wait for the database pool.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { createGateway } from '../../src/gateway.ts';
import { api } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { baseEnv, startGateway } from '../helpers/gateway.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  // Migrate once, so the gateways below only start and stop.
  const first = await startGateway({ DATABASE_URL: db.url });
  await first.close();
});

afterAll(async () => {
  await db?.drop();
});

describe('Gateway.close()', () => {
  // If close() never resolves, the test timeout (15 s, five times the 1 s SHUTDOWN_TIMEOUT_MS of the three
  // attempts together) is what fails it: no assertion here depends on how fast anything is.
  it('ends when called right after start-up', { timeout: 15_000 }, async () => {
    for (let i = 0; i < 3; i++) {
      const config = loadConfig(baseEnv({ DATABASE_URL: db.url, NODE_ID: `early-stop-${i}`, SHUTDOWN_TIMEOUT_MS: '1000' }));
      const gateway = await createGateway(config);
      await gateway.listen(0, '127.0.0.1');
      await gateway.close();
      expect(gateway.httpServer.listening).toBe(false);
    }
  });

  it('ends after serving requests, is idempotent, and stops answering', async () => {
    const gw = await startGateway({ DATABASE_URL: db.url });
    expect((await api(gw.url, gw.tokenFor('closer')).post('/api/conversations', { title: 'x' })).status).toBe(201);
    const [a, b] = [gw.close(), gw.close()];
    await Promise.all([a, b]);
    await gw.close();
    await expect(fetch(`${gw.url}/healthz`)).rejects.toThrow();
  });
});
