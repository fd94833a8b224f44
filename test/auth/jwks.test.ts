// Tokens verified with an identity provider's JWKS, against a real key endpoint on a loopback port: key choice by
// kid, the provider's rotation seen without a restart, an endpoint down at start and later, the bound on fetches
// that tokens with made-up kids can cause, pinned algorithms, and a real gateway's handshake and REST API.
import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createJwksKeys, type JwksKeys } from '../../src/auth/jwks.ts';
import { createTokenVerifier } from '../../src/auth/jwt.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { api, expectError } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startGateway, TEST_SECRET, type StartedGateway } from '../helpers/gateway.ts';
import { signingKey, signWith, startJwksServer, type JwksServer, type SigningKey } from '../helpers/jwks-server.ts';
import { closeAllTabs, connectError, connectTab } from '../helpers/sockets.ts';

const log = createLogger('silent');
const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

const RSA = signingKey('RS256', 'rsa-1');
const EC = signingKey('ES256', 'ec-1');
const ED = signingKey('EdDSA', 'ed-1');

const servers: JwksServer[] = [];
const stores: JwksKeys[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) s.stop();
  for (const s of servers.splice(0)) await s.close();
});

async function provider(...keys: SigningKey[]) {
  const server = await startJwksServer(keys);
  servers.push(server);
  return server;
}

/**
 * A verifier on `server`'s set, configured as the gateway configures it (loadConfig), with the timings in
 * milliseconds so a test need not wait for the defaults. Not started: each test says when the first fetch happens.
 */
function verifierOn(server: JwksServer, env: Record<string, string> = {}, timing: { refreshMs?: number; cooldownMs?: number } = {}) {
  const auth = loadConfig({ JWT_JWKS_URL: server.url, ...env }).auth;
  if (auth.kind !== 'jwks') throw new Error('expected a JWKS configuration');
  const keys = createJwksKeys({ ...auth.jwks, refreshMs: 60_000, cooldownMs: 0, ...timing, algorithms: auth.algorithms, log });
  stores.push(keys);
  return { keys, verify: createTokenVerifier(auth, keys) };
}

const refused = { code: 'UNAUTHORIZED', message: 'the token was refused' };

describe('JWKS: keys by kid, and the provider rotating them', () => {
  it('accepts RS256, ES256 and EdDSA (Ed25519) tokens, each verified with the key its kid names', async () => {
    const server = await provider(RSA, EC, ED);
    const { keys, verify } = verifierOn(server);
    await keys.start();
    for (const key of [RSA, EC, ED]) {
      const identity = await verify(await signWith(key, { sub: `user-${key.alg}` }));
      expect(identity.userId).toBe(`user-${key.alg}`);
      expect(identity.exp).toBeGreaterThan(now());
    }
    // Signed by one key but naming another of the same algorithm: the named key decides, and refuses it.
    const otherEc = signingKey('ES256', 'ec-2');
    server.serve([RSA, EC, ED, otherEc]);
    await keys.refresh();
    await expect(verify(await signWith(otherEc, { kid: EC.kid }))).rejects.toMatchObject(refused);
    expect((await verify(await signWith(otherEc))).userId).toBe('jwks-user');
    expect(keys.state()).toBe('ok');
  });

  it('a token without kid is verified only when one key of the set fits its algorithm', async () => {
    const server = await provider(RSA, EC);
    const { keys, verify } = verifierOn(server);
    await keys.start();
    expect((await verify(await signWith(EC, { kid: null }))).userId).toBe('jwks-user');
    server.serve([RSA, EC, signingKey('ES256', 'ec-2')]);
    await keys.refresh();
    await expect(verify(await signWith(EC, { kid: null }))).rejects.toMatchObject(refused);
  });

  it('rotation: the new key is accepted as soon as it is published, both during the overlap, the old refused once retired', async () => {
    const oldKey = signingKey('RS256', 'key-2026-11');
    const newKey = signingKey('RS256', 'key-2026-12');
    const server = await provider(oldKey);
    // Cooldown 0: the first token of the new key fetches at once (the rate bound has its own test).
    const { keys, verify } = verifierOn(server, {}, { refreshMs: 300, cooldownMs: 0 });
    await keys.start();
    const oldToken = await signWith(oldKey, { sub: 'before' });
    expect((await verify(oldToken)).userId).toBe('before');

    // The provider publishes the new key beside the old one and starts signing with it: the first token naming
    // it fetches the set again, no restart, no wait for the schedule.
    server.serve([oldKey, newKey]);
    const newToken = await signWith(newKey, { sub: 'after' });
    expect((await verify(newToken)).userId).toBe('after');
    expect((await verify(oldToken)).userId).toBe('before');

    // The old key leaves the set: once the scheduled refresh has fetched it, old tokens are refused. (Tokens of
    // a key still cached fetch nothing: the refresh is the schedule's.)
    server.serve([newKey]);
    const seen = server.requests;
    await vi.waitFor(() => expect(verify(oldToken)).rejects.toMatchObject(refused), { timeout: 5_000, interval: 50 });
    expect(server.requests).toBeGreaterThan(seen);
    expect((await verify(newToken)).userId).toBe('after');
  });

  it('refuses a token whose kid is in no set, even after fetching the set again', async () => {
    const server = await provider(EC);
    const { keys, verify } = verifierOn(server);
    await keys.start();
    const stranger = signingKey('ES256', 'not-published');
    await expect(verify(await signWith(stranger))).rejects.toMatchObject(refused);
    // One fetch at start, one for the unknown kid.
    expect(server.requests).toBe(2);
  });
});

describe('JWKS: the endpoint down', () => {
  it('down at start: every token refused and the state unavailable; keys and tokens work once it answers', async () => {
    const server = await provider(EC);
    await server.stop();
    const { keys, verify } = verifierOn(server, {}, { cooldownMs: 60_000 });
    await keys.start();
    expect(keys.state()).toBe('unavailable');
    const token = await signWith(EC);
    await expect(verify(token)).rejects.toMatchObject(refused);

    // The provider comes back: the background retries (1 s, then 2 s…) get the keys with no token's help.
    await server.start();
    await vi.waitFor(() => expect(keys.state()).toBe('ok'), { timeout: 10_000, interval: 50 });
    expect((await verify(token)).userId).toBe('jwks-user');
  });

  it('down later (refused connections, then errors, then garbage): cached keys go on verifying, the state says stale', async () => {
    const server = await provider(EC, ED);
    // The fetches here are the test's own (refresh() is what the schedule calls); no token may cause one.
    const { keys, verify } = verifierOn(server, {}, { cooldownMs: 60_000 });
    await keys.start();
    const token = await signWith(ED);

    await server.stop();
    await keys.refresh();
    expect(keys.state()).toBe('stale');
    expect((await verify(token)).userId).toBe('jwks-user');
    await expect(verify(await signWith(signingKey('EdDSA', 'new')))).rejects.toMatchObject(refused);
    expect((await verify(token)).userId).toBe('jwks-user');

    await server.start();
    const answers: { raw: string; status?: number; headers?: Record<string, string> }[] = [
      { raw: 'Service Unavailable', status: 503 },
      { raw: '<html>sign in</html>', headers: { 'content-type': 'text/html' } },
      { raw: JSON.stringify({ keys: 'none' }) },
      // Only keys the pinned algorithms cannot use (a secret, and a P-384 key): taken as a broken set, not as "refuse everyone".
      { raw: JSON.stringify({ keys: [{ kty: 'oct', k: b64url('s'.repeat(32)), kid: 'hs' }, signingKeyJwk384()] }) },
      { raw: '', status: 302, headers: { location: 'http://elsewhere.example/jwks' } },
    ];
    for (const answer of answers) {
      server.serve(answer);
      await keys.refresh();
      expect(keys.state()).toBe('stale');
      expect((await verify(token)).userId).toBe('jwks-user');
    }

    server.serve([EC, ED]);
    await keys.refresh();
    expect(keys.state()).toBe('ok');
  });
});

describe('JWKS: the rate bound on fetches', () => {
  it('a flood of tokens with random kids fetches at most once per cooldown, all refused, valid tokens unaffected', async () => {
    const server = await provider(EC);
    // A cooldown of 5 s: ample for a flood to finish inside it, even on a busy machine.
    const { keys, verify } = verifierOn(server, {}, { cooldownMs: 5_000 });
    const valid = await signWith(EC);
    // As an attacker would: one signed token, its header's kid replaced at will (the signature is never reached).
    const [, payload, signature] = (await signWith(signingKey('ES256', 'x'))).split('.');
    const madeUp = () => `${b64url({ alg: 'ES256', kid: randomUUID() })}.${payload}.${signature}`;
    const flood = async (n: number) => {
      const results = await Promise.allSettled([...Array.from({ length: n }, () => verify(madeUp())), verify(valid)]);
      expect(results.slice(0, n).every((r) => r.status === 'rejected' && r.reason.code === 'UNAUTHORIZED')).toBe(true);
      expect(results[n]).toMatchObject({ status: 'fulfilled', value: { userId: 'jwks-user' } });
    };
    const fetchedAt = performance.now();
    await keys.start();
    expect(server.requests).toBe(1);

    // Within the cooldown of the start's fetch: no fetch at all.
    await flood(300);
    expect(server.requests).toBe(1);
    // Past it: the first unknown kid fetches once; the others wait for that one fetch and are refused after it.
    await new Promise((r) => setTimeout(r, Math.max(0, fetchedAt + 5_100 - performance.now())));
    await flood(300);
    expect(server.requests).toBe(2);
    await flood(300);
    expect(server.requests).toBe(2);
  });

  it('the same bound holds while the endpoint fails: failed fetches start the cooldown too', async () => {
    const server = await provider(EC);
    server.serve({ raw: 'Service Unavailable', status: 503 });
    const { keys, verify } = verifierOn(server, {}, { cooldownMs: 60_000 });
    const started = performance.now();
    await keys.start();
    expect(keys.state()).toBe('unavailable');
    const token = await signWith(EC);
    for (let i = 0; i < 100; i++) await expect(verify(await signWith(EC, { kid: randomUUID() }))).rejects.toMatchObject(refused);
    await Promise.all(Array.from({ length: 100 }, () => expect(verify(token)).rejects.toMatchObject(refused)));
    // Only the start's fetch, and the schedule's retries (after 1 s, then 2 s more) if the flood took that long.
    const elapsed = performance.now() - started;
    expect(server.requests).toBeLessThanOrEqual(1 + (elapsed > 1_000 ? 1 : 0) + (elapsed > 3_000 ? 1 : 0));

    server.serve([EC]);
    await vi.waitFor(() => expect(keys.state()).toBe('ok'), { timeout: 10_000, interval: 50 });
    expect((await verify(token)).userId).toBe('jwks-user');
  });
});

describe('JWKS: algorithms pinned', () => {
  it('refuses alg none, HS256 signed with a public key or JWKS text, and algorithms not pinned; none of them fetches', async () => {
    const server = await provider(RSA, EC, ED);
    const { keys, verify } = verifierOn(server, { JWT_ALGORITHMS: 'ES256,EdDSA' });
    await keys.start();
    const claims = b64url({ sub: 'mallory', exp: now() + 600 });
    const rsaPem = RSA.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const hs256 = (kid: string, secret: string) => {
      const input = `${b64url({ alg: 'HS256', typ: 'JWT', kid })}.${claims}`;
      return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
    };
    const forged = [
      `${b64url({ alg: 'none', typ: 'JWT' })}.${claims}.`,
      `${b64url({ alg: 'none', kid: EC.kid })}.${claims}.`,
      hs256(RSA.kid, rsaPem),
      hs256(EC.kid, JSON.stringify(EC.jwk)),
      hs256(randomUUID(), rsaPem),
      // RSA is published, but RS256 is not among the pinned algorithms.
      await signWith(RSA),
    ];
    for (const token of forged) await expect(verify(token)).rejects.toMatchObject(refused);
    expect(server.requests).toBe(1);
    expect((await verify(await signWith(ED))).userId).toBe('jwks-user');
  });

  it('checks exp, sub, issuer and audience as the other key configurations do', async () => {
    const server = await provider(EC);
    const { keys, verify } = verifierOn(server, { JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'chat' });
    await keys.start();
    const ok = { iss: 'https://idp.example', aud: 'chat' };
    expect((await verify(await signWith(EC, ok))).userId).toBe('jwks-user');
    await expect(verify(await signWith(EC, { ...ok, expiresInS: -60 }))).rejects.toMatchObject({
      code: 'TOKEN_EXPIRED',
      message: 'the token has expired',
    });
    // Expired and signed by a stranger: the signature is judged first.
    await expect(verify(await signWith(signingKey('ES256', EC.kid), { ...ok, expiresInS: -60 }))).rejects.toMatchObject(refused);
    await expect(verify(await signWith(EC, { ...ok, iss: 'https://evil.example' }))).rejects.toMatchObject(refused);
    await expect(verify(await signWith(EC, { ...ok, aud: 'other' }))).rejects.toMatchObject(refused);
    await expect(verify(await signWith(EC, { aud: 'chat' }))).rejects.toMatchObject(refused);
    await expect(verify(await signWith(EC, { ...ok, extra: { nbf: now() + 600 } }))).rejects.toMatchObject(refused);
    const needs = { code: 'UNAUTHORIZED', message: 'the token needs a sub of 1 to 255 characters and an exp' };
    await expect(verify(await signWith(EC, { ...ok, sub: null }))).rejects.toMatchObject(needs);
    await expect(verify(await signWith(EC, { ...ok, sub: 'u'.repeat(256) }))).rejects.toMatchObject(needs);
    await expect(verify(undefined)).rejects.toMatchObject({ code: 'UNAUTHORIZED', message: 'a bearer token is required' });
    await expect(verify('not.a.jwt')).rejects.toMatchObject(refused);
  });
});

/** A P-384 public key as a JWK: ES384, which the default algorithms do not include. */
function signingKeyJwk384() {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  return { ...publicKey.export({ format: 'jwk' }), kid: 'p384', use: 'sig' };
}

describe('a gateway on a JWKS', () => {
  let db: TestDatabase;
  let server: JwksServer;
  let gw: StartedGateway | undefined;
  const jwksEnv = (url: string) => ({ DATABASE_URL: db.url, JWT_SECRET: undefined, JWT_JWKS_URL: url, JWT_JWKS_REFRESH_S: '1' });

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    closeAllTabs();
    await gw?.close();
    gw = undefined;
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('accepts JWKS-signed tokens at the socket handshake, in auth:refresh and on the REST API', async () => {
    server = await provider(RSA, EC, ED);
    gw = await startGateway(jwksEnv(server.url));
    expect(gw.config.auth).toMatchObject({ kind: 'jwks', demo: false, algorithms: ['RS256', 'ES256', 'EdDSA'] });

    const created = await api(gw.url, await signWith(ED, { sub: 'ada' })).post('/api/conversations', { title: 'via JWKS' });
    expect(created.status, created.text).toBe(201);
    const tab = await connectTab(gw.url, await signWith(RSA, { sub: 'ada' }));
    const listed = await tab.ok('conversation:list', {});
    expect(listed.conversations.map((c) => c.id)).toEqual([created.body.conversation.id]);
    const later = now() + 3_600;
    const refreshed = await tab.ok('auth:refresh', { token: await signWith(EC, { sub: 'ada', expiresInS: 3_600 }) });
    expect(refreshed.exp).toBeGreaterThanOrEqual(later - 5);

    const stranger = signingKey('ES256', 'unknown');
    expect((await connectError(gw.url, await signWith(stranger))).data?.code).toBe('UNAUTHORIZED');
    expect((await connectError(gw.url, await signWith(EC, { expiresInS: -10 }))).data?.code).toBe('TOKEN_EXPIRED');
    expectError(await api(gw.url, await signWith(stranger)).get('/api/conversations'), 401, 'UNAUTHORIZED');
    // An HS256 token made with the test suite's usual secret means nothing here.
    expectError(await api(gw.url, signRawHs256()).get('/api/conversations'), 401, 'UNAUTHORIZED');
  });

  it('starts with the endpoint down: not ready and refusing tokens until it answers, then ready; stale later, still serving', async () => {
    server = await provider(EC);
    await server.stop();
    gw = await startGateway(jwksEnv(server.url));
    const token = await signWith(EC, { sub: 'patient' });
    const ready = await api(gw.url).get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.checks.jwks).toBe('unavailable');
    expectError(await api(gw.url, token).get('/api/conversations'), 401, 'UNAUTHORIZED');

    await server.start();
    await vi.waitFor(async () => expect((await api(gw!.url).get('/readyz')).status).toBe(200), { timeout: 10_000, interval: 100 });
    expect((await api(gw.url, token).get('/api/conversations')).status).toBe(200);

    // Down again: the scheduled refresh (every second here) fails, the node stays ready on its cached keys.
    await server.stop();
    await vi.waitFor(async () => expect((await api(gw!.url).get('/readyz')).body.checks.jwks).toBe('stale'), {
      timeout: 10_000,
      interval: 100,
    });
    expect((await api(gw.url).get('/readyz')).status).toBe(200);
    expect((await api(gw.url, token).get('/api/conversations')).status).toBe(200);
    const tab = await connectTab(gw.url, token);
    expect(tab.connected).toBe(true);
  });
});

/** An HS256 token with a secret of the usual length, signed by hand. */
function signRawHs256(): string {
  const input = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'x', exp: now() + 600 })}`;
  return `${input}.${createHmac('sha256', TEST_SECRET).update(input).digest('base64url')}`;
}
