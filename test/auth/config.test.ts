import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// Start-up refusals of unsafe auth configurations, and demo mode: with no key configured (and only then)
// a token endpoint exists, and its tokens work on the API.
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenVerifier } from '../../src/auth/jwt.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { GatewayError } from '../../src/shared/errors.ts';
import { api, createConversation, expectError } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startGateway, TEST_SECRET, type StartedGateway } from '../helpers/gateway.ts';

const demoSecret = () => randomBytes(48).toString('base64url');

function keyPair(type: 'rsa' | 'ec', namedCurve?: string) {
  const { publicKey, privateKey } =
    type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: namedCurve! });
  return { pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey };
}
const RSA = keyPair('rsa');
const EC_P256 = keyPair('ec', 'P-256');
const EC_P384 = keyPair('ec', 'P-384');

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
    expect(() => loadConfig({ JWT_SECRET: `${'é'.repeat(15)}x` })).toThrow(ConfigError);
  });

  it.each(['none', 'HS256,none', 'NONE', 'HS256, None'])('refuses JWT_ALGORITHMS=%s', (algs) => {
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, JWT_ALGORITHMS: algs })).toThrow(ConfigError);
  });

  it('refuses algorithms that do not fit the key, and both keys at once', () => {
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, JWT_ALGORITHMS: 'RS256' })).toThrow(/RS256 cannot be used with JWT_SECRET/);
    expect(() => loadConfig({ JWT_PUBLIC_KEY: EC_P256.pem, JWT_ALGORITHMS: 'HS256' })).toThrow(/HS256 cannot be used with JWT_PUBLIC_KEY/);
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, JWT_PUBLIC_KEY: EC_P256.pem })).toThrow(/not both/);
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, JWT_ALGORITHMS: ',' })).toThrow(/names no algorithm/);
  });

  it('refuses a public key of the wrong kind or curve for an algorithm named', () => {
    expect(() => loadConfig({ JWT_PUBLIC_KEY: EC_P256.pem, JWT_ALGORITHMS: 'RS256' })).toThrow(
      /RS256 cannot verify with the ec prime256v1 key/,
    );
    expect(() => loadConfig({ JWT_PUBLIC_KEY: EC_P256.pem, JWT_ALGORITHMS: 'ES256,ES384' })).toThrow(/ES384 cannot verify/);
    expect(() => loadConfig({ JWT_PUBLIC_KEY: RSA.pem, JWT_ALGORITHMS: 'ES256' })).toThrow(/ES256 cannot verify with the rsa key/);
    const ed25519 = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => loadConfig({ JWT_PUBLIC_KEY: ed25519 })).toThrow(/neither RS256 nor ES256 fits the ed25519 key/);
    // Unset, the algorithms are those of the default pair that the key can verify.
    expect(loadConfig({ JWT_PUBLIC_KEY: EC_P256.pem }).auth.algorithms).toEqual(['ES256']);
    expect(loadConfig({ JWT_PUBLIC_KEY: RSA.pem }).auth.algorithms).toEqual(['RS256']);
  });

  it('refuses a public key that is not one, a private key, and a key in PEM form given as JWT_SECRET', () => {
    expect(() => loadConfig({ JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\\nnot a key\\n-----END PUBLIC KEY-----' })).toThrow(
      /JWT_PUBLIC_KEY is not a public key in PEM form/,
    );
    const privatePem = EC_P256.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(() => loadConfig({ JWT_PUBLIC_KEY: privatePem })).toThrow(/holds a private key/);
    // As an HMAC secret a public key would let anyone who has it, that is everyone, sign tokens.
    expect(() => loadConfig({ JWT_SECRET: EC_P256.pem })).toThrow(/JWT_SECRET holds a key in PEM form/);
  });

  it('verifies tokens with the key it parsed, passed on one line with literal \\n', () => {
    const cases = [
      { env: { JWT_SECRET: TEST_SECRET, JWT_ALGORITHMS: 'HS512' }, key: TEST_SECRET as string | KeyObject, algorithm: 'HS512' as const },
      {
        env: { JWT_PUBLIC_KEY: RSA.pem.replace(/\n/g, '\\n'), JWT_ALGORITHMS: 'RS256,PS256' },
        key: RSA.privateKey,
        algorithm: 'PS256' as const,
      },
      {
        env: { JWT_PUBLIC_KEY: EC_P384.pem.replace(/\n/g, '\\n'), JWT_ALGORITHMS: 'ES384' },
        key: EC_P384.privateKey,
        algorithm: 'ES384' as const,
      },
    ];
    for (const c of cases) {
      const verify = createTokenVerifier(loadConfig(c.env).auth);
      expect(verify(jwt.sign({}, c.key, { algorithm: c.algorithm, subject: 'u1', expiresIn: 60 })).userId).toBe('u1');
    }
    // The public key's text used as an HS256 secret (key confusion) is refused.
    const verify = createTokenVerifier(loadConfig({ JWT_PUBLIC_KEY: RSA.pem }).auth);
    const forged = jwt.sign({}, RSA.pem, { algorithm: 'HS256', subject: 'u1', expiresIn: 60 });
    expect(() => verify(forged)).toThrow(GatewayError);
  });

  it('refuses to start without a key unless demo mode is offered, and then marks it as demo', () => {
    expect(() => loadConfig({})).toThrow(ConfigError);
    const demo = loadConfig({}, demoSecret);
    expect(demo.auth.demo).toBe(true);
    expect(demo.auth.algorithms).toEqual(['HS256']);
    expect(Buffer.byteLength(demo.auth.key as string)).toBeGreaterThanOrEqual(32);
    // A configured key always wins over the demo offer.
    expect(loadConfig({ JWT_SECRET: TEST_SECRET }, demoSecret).auth.demo).toBe(false);
  });

  it('never opens demo mode by accident: an empty secret and a production database without a key stop the start', () => {
    expect(() => loadConfig({ JWT_SECRET: '' }, demoSecret)).toThrow(/JWT_SECRET is set but empty/);
    expect(() => loadConfig({ JWT_SECRET: '', JWT_PUBLIC_KEY: 'x' }, demoSecret)).toThrow(/empty/);
    expect(() => loadConfig({ DATABASE_URL: 'postgresql://db/chat' }, demoSecret)).toThrow(/demo mode runs only on the embedded database/);
    // Demo mode listens on this machine only, unless HOST says otherwise; a keyed gateway on every interface.
    expect(loadConfig({}, demoSecret).host).toBe('127.0.0.1');
    expect(loadConfig({ HOST: '0.0.0.0' }, demoSecret).host).toBe('0.0.0.0');
    expect(loadConfig({ JWT_SECRET: TEST_SECRET }).host).toBe('0.0.0.0');
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
  let demoDir: string | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    // Demo mode runs on the embedded database only.
    demoDir = await mkdtemp(join(tmpdir(), 'chat-demo-'));
    demo = await startGateway({ PGLITE_DIR: demoDir, JWT_SECRET: undefined }, { makeDemoSecret: demoSecret });
    keyed = await startGateway({ DATABASE_URL: db.url });
  });

  afterAll(async () => {
    await demo?.close();
    await keyed?.close();
    await db?.drop();
    if (demoDir) await rm(demoDir, { recursive: true, force: true });
  });

  it('issues a token for a typed name that the API accepts as that user', async () => {
    expect(demo.config.auth.demo).toBe(true);
    const res = await api(demo.url).post('/api/demo/token', { name: 'Ada Lovelace' });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ token: expect.any(String), userId: 'Ada Lovelace', expiresAt: expect.any(String) });
    expect(Date.parse(res.body.expiresAt)).toBeGreaterThan(Date.now());

    const ada = api(demo.url, res.body.token);
    const c = await createConversation(ada, 'demo chat');
    const rows = await demo.gateway.orm.em.fork().execute<{ user_id: string }[]>('select user_id from conversations where id = ?', [c.id]);
    expect(rows.map((r) => r.user_id)).toEqual(['Ada Lovelace']);
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
