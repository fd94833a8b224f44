// Start-up refusals of unsafe auth configurations, and demo mode: with no key configured (and only then)
// a token endpoint exists, and its tokens work on the API.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { api, createConversation, expectError } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startGateway, TEST_SECRET, type StartedGateway } from '../helpers/gateway.ts';

const demoSecret = () => randomBytes(48).toString('base64url');

describe('loadConfig refuses unsafe auth settings', () => {
  it('refuses a JWT_SECRET shorter than 32 bytes, and accepts 32', () => {
    expect(() => loadConfig({ JWT_SECRET: 'x'.repeat(31) })).toThrow(ConfigError);
    expect(() => loadConfig({ JWT_SECRET: 'short' }, demoSecret)).toThrow(ConfigError);
    const ok = loadConfig({ JWT_SECRET: 'x'.repeat(32) });
    expect(ok.auth).toMatchObject({ key: 'x'.repeat(32), algorithms: ['HS256'], demo: false });
  });

  it('counts the secret in bytes, not characters', () => {
    // 16 characters, 32 bytes in UTF-8.
    expect(loadConfig({ JWT_SECRET: 'é'.repeat(16) }).auth.demo).toBe(false);
    expect(() => loadConfig({ JWT_SECRET: 'é'.repeat(15) + 'x' })).toThrow(ConfigError);
  });

  it.each(['none', 'HS256,none', 'NONE', 'HS256, None'])('refuses JWT_ALGORITHMS=%s', (algs) => {
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, JWT_ALGORITHMS: algs })).toThrow(ConfigError);
  });

  it('refuses algorithms that do not fit the key, and both keys at once', () => {
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, JWT_ALGORITHMS: 'RS256' })).toThrow(ConfigError);
    expect(() => loadConfig({ JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----', JWT_ALGORITHMS: 'HS256' })).toThrow(ConfigError);
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----' })).toThrow(ConfigError);
  });

  it('refuses a public key that is not one, and reads a real one passed on one line', () => {
    expect(() => loadConfig({ JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\\nnot a key\\n-----END PUBLIC KEY-----' })).toThrow(
      /JWT_PUBLIC_KEY is not a public key in PEM form/,
    );
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const config = loadConfig({ JWT_PUBLIC_KEY: pem.replace(/\n/g, '\\n'), JWT_ALGORITHMS: 'ES256' });
    expect(config.auth.key).toBe(pem);
  });

  it('refuses to start without a key unless demo mode is offered, and then marks it as demo', () => {
    expect(() => loadConfig({})).toThrow(ConfigError);
    const demo = loadConfig({}, demoSecret);
    expect(demo.auth.demo).toBe(true);
    expect(demo.auth.algorithms).toEqual(['HS256']);
    expect(Buffer.byteLength(demo.auth.key as string)).toBeGreaterThanOrEqual(32);
    // A configured key always wins over the demo offer; empty strings count as unset.
    expect(loadConfig({ JWT_SECRET: TEST_SECRET }, demoSecret).auth.demo).toBe(false);
    expect(loadConfig({ JWT_SECRET: '' }, demoSecret).auth.demo).toBe(true);
  });

  it('refuses malformed values with a ConfigError naming the variable', () => {
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, MAX_MESSAGE_CHARS: '0' })).toThrow(ConfigError);
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, ASSISTANT: 'gpt' })).toThrow(/ASSISTANT/);
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, MIGRATE_ON_START: 'maybe' })).toThrow(ConfigError);
  });
});

describe('demo mode', () => {
  let db: TestDatabase;
  let demo: StartedGateway;
  let keyed: StartedGateway;

  beforeAll(async () => {
    db = await createTestDatabase();
    demo = await startGateway({ DATABASE_URL: db.url, JWT_SECRET: undefined }, { makeDemoSecret: demoSecret });
    keyed = await startGateway({ DATABASE_URL: db.url });
  });

  afterAll(async () => {
    await demo?.close();
    await keyed?.close();
    await db?.drop();
  });

  it('issues a token for a typed name that the API accepts as that user', async () => {
    expect(demo.config.auth.demo).toBe(true);
    const res = await api(demo.url).post('/api/demo/token', { name: 'Ada Lovelace' });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ token: expect.any(String), userId: 'Ada Lovelace', expiresAt: expect.any(String) });
    expect(Date.parse(res.body.expiresAt)).toBeGreaterThan(Date.now());

    const ada = api(demo.url, res.body.token);
    const c = await createConversation(ada, 'demo chat');
    const [row] = await db.query<{ user_id: string }>('select user_id from conversations where id = $1', [c.id]);
    expect(row!.user_id).toBe('Ada Lovelace');
    expect((await ada.get('/api/conversations')).body.conversations.map((x: { id: string }) => x.id)).toEqual([c.id]);
  });

  it('refuses names that are empty, too long or not plain text', async () => {
    for (const name of ['', '   ', 'n'.repeat(65), '<script>', 'a/b']) {
      expectError(await api(demo.url).post('/api/demo/token', { name }), 400, 'VALIDATION');
    }
    expectError(await api(demo.url).post('/api/demo/token', {}), 400, 'VALIDATION');
  });

  it('its tokens are worthless on a gateway with a configured key', async () => {
    const { token } = (await api(demo.url).post('/api/demo/token', { name: 'eve' })).body;
    expectError(await api(keyed.url, token).get('/api/conversations'), 401, 'UNAUTHORIZED');
  });

  it('does not exist when JWT_SECRET is set: POST /api/demo/token is 404 and issues nothing', async () => {
    // An authenticated caller sees that the route does not exist at all.
    const res = await api(keyed.url, keyed.tokenFor('curious')).post('/api/demo/token', { name: 'alice' });
    expectError(res, 404, 'NOT_FOUND');
    // Without a token the /api auth guard answers first (as for any unknown /api route); still no token.
    const anonymous = await api(keyed.url).post('/api/demo/token', { name: 'alice' });
    expect([404, 401]).toContain(anonymous.status);
    expect(anonymous.body.token).toBeUndefined();
    expect(anonymous.body.error.code).toMatch(/^(NOT_FOUND|UNAUTHORIZED)$/);
  });
});
