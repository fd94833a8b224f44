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
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, JWT_PUBLIC_KEY: EC_P256.pem })).toThrow(/not JWT_SECRET and JWT_PUBLIC_KEY/);
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

  it('verifies tokens with the key it parsed, passed on one line with literal \\n', async () => {
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
      expect((await verify(jwt.sign({}, c.key, { algorithm: c.algorithm, subject: 'u1', expiresIn: 60 }))).userId).toBe('u1');
    }
    // The public key's text used as an HS256 secret (key confusion) is refused.
    const verify = createTokenVerifier(loadConfig({ JWT_PUBLIC_KEY: RSA.pem }).auth);
    const forged = jwt.sign({}, RSA.pem, { algorithm: 'HS256', subject: 'u1', expiresIn: 60 });
    await expect(verify(forged)).rejects.toThrow(GatewayError);
  });

  it('refuses to start without a key unless demo mode is offered, and then marks it as demo', () => {
    expect(() => loadConfig({})).toThrow(ConfigError);
    const demo = loadConfig({}, demoSecret);
    expect(demo.auth.demo).toBe(true);
    expect(demo.auth.algorithms).toEqual(['HS256']);
    expect(demo.auth.kind === 'secret' && Buffer.byteLength(demo.auth.key)).toBeGreaterThanOrEqual(32);
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

describe('loadConfig with a JWKS', () => {
  const URL = 'https://idp.example/.well-known/jwks.json';

  it('takes an https URL, or plain http to a loopback address only', () => {
    expect(loadConfig({ JWT_JWKS_URL: URL }).auth).toMatchObject({
      kind: 'jwks',
      demo: false,
      algorithms: ['RS256', 'ES256', 'EdDSA'],
      jwks: { url: URL, refreshMs: 600_000, cooldownMs: 30_000 },
    });
    for (const local of ['http://127.0.0.1:8080/jwks', 'http://127.1.2.3/jwks', 'http://localhost:3001/jwks', 'http://[::1]:9000/jwks']) {
      expect(loadConfig({ JWT_JWKS_URL: local }).auth.kind).toBe('jwks');
    }
    for (const remote of ['http://idp.example/jwks', 'http://10.0.0.5/jwks', 'http://[::2]/jwks', 'http://localhost.evil.example/jwks']) {
      expect(() => loadConfig({ JWT_JWKS_URL: remote })).toThrow(/JWT_JWKS_URL must be an https:\/\/ URL/);
    }
    expect(() => loadConfig({ JWT_JWKS_URL: 'ftp://idp.example/jwks' })).toThrow(/must be an https/);
    expect(() => loadConfig({ JWT_JWKS_URL: 'idp.example/jwks' })).toThrow(/JWT_JWKS_URL is not a URL/);
  });

  it('is exclusive with JWT_SECRET and JWT_PUBLIC_KEY, and never demo mode', () => {
    expect(() => loadConfig({ JWT_JWKS_URL: URL, JWT_SECRET: TEST_SECRET })).toThrow(/not JWT_SECRET and JWT_JWKS_URL/);
    expect(() => loadConfig({ JWT_JWKS_URL: URL, JWT_PUBLIC_KEY: EC_P256.pem })).toThrow(/not JWT_PUBLIC_KEY and JWT_JWKS_URL/);
    expect(() => loadConfig({ JWT_JWKS_URL: URL, JWT_SECRET_PREVIOUS: TEST_SECRET })).toThrow(/go with JWT_SECRET/);
    // Demo mode is offered, but a JWKS is a key configured: no demo, even on the embedded database.
    expect(loadConfig({ JWT_JWKS_URL: URL }, demoSecret).auth).toMatchObject({ kind: 'jwks', demo: false });
    expect(loadConfig({ JWT_JWKS_URL: URL, DATABASE_URL: 'postgresql://db/chat' }, demoSecret).auth.demo).toBe(false);
    expect(loadConfig({ JWT_JWKS_URL: URL }, demoSecret).host).toBe('0.0.0.0');
  });

  it('pins asymmetric algorithms only, EdDSA among them, and bounds the timings', () => {
    expect(loadConfig({ JWT_JWKS_URL: URL, JWT_ALGORITHMS: 'EdDSA' }).auth.algorithms).toEqual(['EdDSA']);
    expect(loadConfig({ JWT_JWKS_URL: URL, JWT_ALGORITHMS: 'PS256,ES384' }).auth.algorithms).toEqual(['PS256', 'ES384']);
    expect(() => loadConfig({ JWT_JWKS_URL: URL, JWT_ALGORITHMS: 'RS256,HS256' })).toThrow(/HS256 cannot be used with JWT_JWKS_URL/);
    expect(() => loadConfig({ JWT_JWKS_URL: URL, JWT_ALGORITHMS: 'none' })).toThrow(/never contain "none"/);
    // jsonwebtoken, which verifies with JWT_PUBLIC_KEY, has no EdDSA: said at start-up, not by refusing every token.
    const ed25519 = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => loadConfig({ JWT_PUBLIC_KEY: ed25519, JWT_ALGORITHMS: 'EdDSA' })).toThrow(/EdDSA is verified with JWT_JWKS_URL only/);
    const timed = loadConfig({ JWT_JWKS_URL: URL, JWT_JWKS_REFRESH_S: '60', JWT_JWKS_COOLDOWN_S: '5' }).auth;
    expect(timed).toMatchObject({ jwks: { refreshMs: 60_000, cooldownMs: 5_000 } });
    expect(() => loadConfig({ JWT_JWKS_URL: URL, JWT_JWKS_COOLDOWN_S: '0' })).toThrow(/JWT_JWKS_COOLDOWN_S/);
    expect(() => loadConfig({ JWT_JWKS_URL: URL, JWT_JWKS_REFRESH_S: '0' })).toThrow(/JWT_JWKS_REFRESH_S/);
  });
});

describe('HS256 secret rotation', () => {
  const PREVIOUS = 'the-previous-secret-of-the-test-suite-0123456789';
  const OTHER = 'a-secret-nobody-configured-0123456789abcdefghij';
  const sign = (secret: string, header: Record<string, string> = {}, expiresIn = 60) =>
    jwt.sign({}, secret, { algorithm: 'HS256', subject: 'u1', expiresIn, header: { alg: 'HS256', ...header } });

  it('refuses a previous secret that is short, a PEM key, the current one, or without a current one; and kids naming both', () => {
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, JWT_SECRET_PREVIOUS: 'x'.repeat(31) })).toThrow(/JWT_SECRET_PREVIOUS is 31 bytes/);
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, JWT_SECRET_PREVIOUS: EC_P256.pem })).toThrow(
      /JWT_SECRET_PREVIOUS holds a key in PEM/,
    );
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, JWT_SECRET_PREVIOUS: TEST_SECRET })).toThrow(/same as JWT_SECRET/);
    expect(() => loadConfig({ JWT_SECRET_PREVIOUS: PREVIOUS })).toThrow(/go with JWT_SECRET/);
    expect(() => loadConfig({ JWT_SECRET_PREVIOUS: PREVIOUS }, demoSecret)).toThrow(/go with JWT_SECRET/);
    expect(() =>
      loadConfig({ JWT_SECRET: TEST_SECRET, JWT_SECRET_KID: 'k', JWT_SECRET_PREVIOUS: PREVIOUS, JWT_SECRET_PREVIOUS_KID: 'k' }),
    ).toThrow(/must differ/);
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, JWT_SECRET_PREVIOUS_KID: 'k0' })).toThrow(/JWT_SECRET_PREVIOUS is not/);
    // Emptied, as a deployment tool leaves it at the end of a rotation: unset.
    expect(loadConfig({ JWT_SECRET: TEST_SECRET, JWT_SECRET_PREVIOUS: '' }).auth).toMatchObject({ kind: 'secret', previous: undefined });
  });

  it('accepts tokens of either secret during the overlap, and only the current one after', async () => {
    const during = createTokenVerifier(loadConfig({ JWT_SECRET: TEST_SECRET, JWT_SECRET_PREVIOUS: PREVIOUS }).auth);
    const oldToken = sign(PREVIOUS);
    const newToken = sign(TEST_SECRET);
    expect((await during(oldToken)).userId).toBe('u1');
    expect((await during(newToken)).userId).toBe('u1');
    await expect(during(sign(OTHER))).rejects.toMatchObject({ code: 'UNAUTHORIZED', message: 'the token was refused' });
    // An expired token of the previous secret says so (its signature is good); one of no secret is refused.
    await expect(during(sign(PREVIOUS, {}, -10))).rejects.toMatchObject({ code: 'TOKEN_EXPIRED' });
    await expect(during(sign(OTHER, {}, -10))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    // The algorithm stays pinned for the previous secret too.
    const hs512 = jwt.sign({}, PREVIOUS, { algorithm: 'HS512', subject: 'u1', expiresIn: 60 });
    await expect(during(hs512)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });

    const afterwards = createTokenVerifier(loadConfig({ JWT_SECRET: TEST_SECRET }).auth);
    await expect(afterwards(oldToken)).rejects.toMatchObject({ code: 'UNAUTHORIZED', message: 'the token was refused' });
    expect((await afterwards(newToken)).userId).toBe('u1');
  });

  it('with kids configured, a token naming one is verified with that secret only; other kids, or none, with either', async () => {
    const verify = createTokenVerifier(
      loadConfig({
        JWT_SECRET: TEST_SECRET,
        JWT_SECRET_KID: '2026-12',
        JWT_SECRET_PREVIOUS: PREVIOUS,
        JWT_SECRET_PREVIOUS_KID: '2026-11',
      }).auth,
    );
    expect((await verify(sign(TEST_SECRET, { kid: '2026-12' }))).userId).toBe('u1');
    expect((await verify(sign(PREVIOUS, { kid: '2026-11' }))).userId).toBe('u1');
    await expect(verify(sign(TEST_SECRET, { kid: '2026-11' }))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(verify(sign(PREVIOUS, { kid: '2026-12' }))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect((await verify(sign(PREVIOUS, { kid: 'minted-elsewhere' }))).userId).toBe('u1');
    expect((await verify(sign(PREVIOUS))).userId).toBe('u1');
    await expect(verify(sign(OTHER, { kid: '2026-12' }))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
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
