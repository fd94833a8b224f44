// Bearer token verification on the REST API: every refused token is 401 with UNAUTHORIZED (or TOKEN_EXPIRED),
// in the contract's error shape, and nothing is written for it. Tokens are forged by hand where a library
// would refuse to make them (alg none, key confusion).
import { createHmac, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, expectError } from '../helpers/api.ts';
import type { TestDatabase } from '../helpers/db.ts';
import { gatewayOnFreshDatabase, signRaw, startGateway, TEST_SECRET, type StartedGateway } from '../helpers/gateway.ts';

const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** A compact JWT with any header, signed by `signer` over `header.payload` (empty signature when absent). */
function forge(header: Record<string, unknown>, payload: Record<string, unknown>, signer?: (input: string) => Buffer): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${signer ? signer(input).toString('base64url') : ''}`;
}
const hmac = (alg: 'sha256' | 'sha512', key: string | Buffer) => (input: string) => createHmac(alg, key).update(input).digest();

let db: TestDatabase;
let gw: StartedGateway;

gatewayOnFreshDatabase((started) => ({ db, gateway: gw } = started));

const userCount = async () => Number((await db.query<{ n: string }>('select count(*) as n from users'))[0]!.n);

/** Tries a write and a read with the token; both must be refused with the code, and no user appear. */
async function expectRefused(url: string, authorization: string | undefined, code: 'UNAUTHORIZED' | 'TOKEN_EXPIRED') {
  const before = await userCount();
  const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
  const client = api(url);
  expectError(await client.post('/api/conversations', { title: 'should not exist' }, { headers }), 401, code);
  expectError(await client.get('/api/conversations', { headers }), 401, code);
  expectError(await client.delete('/api/me', { headers }), 401, code);
  expect(await userCount()).toBe(before);
}

describe('HS256 gateway', () => {
  it('accepts a valid token (the baseline the refusals are measured against)', async () => {
    const res = await api(gw.url, gw.tokenFor('valid-user')).post('/api/conversations', { title: 'ok' });
    expect(res.status).toBe(201);
  });

  it('refuses a missing token or a non-Bearer Authorization header', async () => {
    await expectRefused(gw.url, undefined, 'UNAUTHORIZED');
    await expectRefused(gw.url, 'Bearer', 'UNAUTHORIZED');
    await expectRefused(gw.url, `Basic ${Buffer.from('u:p').toString('base64')}`, 'UNAUTHORIZED');
    await expectRefused(gw.url, gw.tokenFor('no-scheme'), 'UNAUTHORIZED');
  });

  it('refuses a garbage token', async () => {
    await expectRefused(gw.url, 'Bearer not.a.jwt', 'UNAUTHORIZED');
    await expectRefused(gw.url, 'Bearer abc', 'UNAUTHORIZED');
    // A valid token with its payload swapped: the signature no longer matches.
    const [h, , s] = gw.tokenFor('victim').split('.');
    await expectRefused(gw.url, `Bearer ${h}.${b64url({ sub: 'attacker', exp: now() + 600 })}.${s}`, 'UNAUTHORIZED');
  });

  it('refuses alg none, in any spelling, with or without a signature', async () => {
    const claims = { sub: 'mallory', exp: now() + 600 };
    await expectRefused(gw.url, `Bearer ${forge({ alg: 'none', typ: 'JWT' }, claims)}`, 'UNAUTHORIZED');
    await expectRefused(gw.url, `Bearer ${forge({ alg: 'None', typ: 'JWT' }, claims)}`, 'UNAUTHORIZED');
    await expectRefused(gw.url, `Bearer ${forge({ alg: 'none' }, claims, hmac('sha256', TEST_SECRET))}`, 'UNAUTHORIZED');
  });

  it('refuses a token signed with another key, or with an algorithm not pinned', async () => {
    await expectRefused(
      gw.url,
      `Bearer ${signRaw({ sub: 'x' }, 'another-secret-of-at-least-32-bytes!!', { expiresIn: 600 })}`,
      'UNAUTHORIZED',
    );
    // Right secret, HS512 instead of the configured HS256.
    await expectRefused(
      gw.url,
      `Bearer ${forge({ alg: 'HS512', typ: 'JWT' }, { sub: 'x', exp: now() + 600 }, hmac('sha512', TEST_SECRET))}`,
      'UNAUTHORIZED',
    );
  });

  it('refuses an expired token with TOKEN_EXPIRED', async () => {
    await expectRefused(gw.url, `Bearer ${signRaw({ sub: 'late', exp: now() - 60 })}`, 'TOKEN_EXPIRED');
  });

  it('refuses a token without exp, without sub, or with a sub over 255 characters', async () => {
    await expectRefused(gw.url, `Bearer ${signRaw({ sub: 'forever' })}`, 'UNAUTHORIZED');
    await expectRefused(gw.url, `Bearer ${signRaw({ exp: now() + 600 })}`, 'UNAUTHORIZED');
    await expectRefused(gw.url, `Bearer ${signRaw({ sub: '', exp: now() + 600 })}`, 'UNAUTHORIZED');
    await expectRefused(gw.url, `Bearer ${signRaw({ sub: 42, exp: now() + 600 })}`, 'UNAUTHORIZED');
    await expectRefused(gw.url, `Bearer ${signRaw({ sub: 'u'.repeat(256), exp: now() + 600 })}`, 'UNAUTHORIZED');
  });

  it('accepts a sub of exactly 255 characters and stores it as the user id', async () => {
    const sub = 'u'.repeat(255);
    const res = await api(gw.url, gw.tokenFor(sub)).post('/api/conversations', { title: 'long id' });
    expect(res.status).toBe(201);
    const [row] = await db.query<{ user_id: string }>('select user_id from conversations where id = $1', [res.body.conversation.id]);
    expect(row!.user_id).toBe(sub);
  });

  it('takes the identity only from the token, never from the request', async () => {
    const client = api(gw.url, gw.tokenFor('real-owner'));
    const res = await client.post('/api/conversations', { title: 'mine', userId: 'someone-else', user: 'someone-else' });
    expect(res.status).toBe(201);
    const [row] = await db.query<{ user_id: string }>('select user_id from conversations where id = $1', [res.body.conversation.id]);
    expect(row!.user_id).toBe('real-owner');
  });
});

describe('issuer and audience', () => {
  let strict: StartedGateway;
  beforeAll(async () => {
    strict = await startGateway({ DATABASE_URL: db.url, JWT_ISSUER: 'https://auth.example', JWT_AUDIENCE: 'chat-gateway' });
  });
  afterAll(async () => {
    await strict?.close();
  });

  it('accepts the configured issuer and audience', async () => {
    const res = await api(strict.url, strict.tokenFor('iss-ok')).get('/api/conversations');
    expect(res.status).toBe(200);
  });

  it('refuses a wrong or missing issuer or audience', async () => {
    const exp = now() + 600;
    await expectRefused(
      strict.url,
      `Bearer ${signRaw({ sub: 'x', exp, iss: 'https://evil.example', aud: 'chat-gateway' })}`,
      'UNAUTHORIZED',
    );
    await expectRefused(
      strict.url,
      `Bearer ${signRaw({ sub: 'x', exp, iss: 'https://auth.example', aud: 'another-service' })}`,
      'UNAUTHORIZED',
    );
    await expectRefused(strict.url, `Bearer ${signRaw({ sub: 'x', exp, aud: 'chat-gateway' })}`, 'UNAUTHORIZED');
    await expectRefused(strict.url, `Bearer ${signRaw({ sub: 'x', exp, iss: 'https://auth.example' })}`, 'UNAUTHORIZED');
    // The lenient gateway's ordinary tokens carry neither.
    await expectRefused(strict.url, `Bearer ${gw.tokenFor('x')}`, 'UNAUTHORIZED');
  });
});

describe('HS256 secret rotation', () => {
  const PREVIOUS = 'the-previous-secret-of-the-test-suite-0123456789';
  let rotating: StartedGateway;
  beforeAll(async () => {
    rotating = await startGateway({ DATABASE_URL: db.url, JWT_SECRET_PREVIOUS: PREVIOUS });
  });
  afterAll(async () => {
    await rotating?.close();
  });

  it('accepts tokens of the current and the previous secret; the gateway without the previous refuses the old ones', async () => {
    const oldToken = signRaw({ sub: 'rotated' }, PREVIOUS, { expiresIn: 600 });
    expect((await api(rotating.url, oldToken).get('/api/conversations')).status).toBe(200);
    expect((await api(rotating.url, rotating.tokenFor('rotated')).get('/api/conversations')).status).toBe(200);
    await expectRefused(gw.url, `Bearer ${oldToken}`, 'UNAUTHORIZED');
    await expectRefused(rotating.url, `Bearer ${signRaw({ sub: 'late' }, PREVIOUS, { expiresIn: -60 })}`, 'TOKEN_EXPIRED');
  });
});

describe('public-key gateway (ES256)', () => {
  let pk: StartedGateway;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();

  beforeAll(async () => {
    // One line with literal \n, as PEM keys are often passed in environments.
    pk = await startGateway({
      DATABASE_URL: db.url,
      JWT_SECRET: undefined,
      JWT_PUBLIC_KEY: publicPem.replace(/\n/g, '\\n'),
      JWT_ALGORITHMS: 'ES256',
    });
  });
  afterAll(async () => {
    await pk?.close();
  });

  it('accepts a token signed with the matching private key', async () => {
    const token = jwt.sign({ sub: 'es-user' }, privateKey, { algorithm: 'ES256', expiresIn: 600 });
    const res = await api(pk.url, token).post('/api/conversations', { title: 'signed' });
    expect(res.status).toBe(201);
  });

  it('refuses HS256 tokens made with the public key as the secret (key confusion)', async () => {
    const claims = { sub: 'confused', exp: now() + 600 };
    await expectRefused(pk.url, `Bearer ${forge({ alg: 'HS256', typ: 'JWT' }, claims, hmac('sha256', publicPem))}`, 'UNAUTHORIZED');
    await expectRefused(
      pk.url,
      `Bearer ${forge({ alg: 'HS256', typ: 'JWT' }, claims, hmac('sha256', publicPem.replace(/\n/g, '\\n')))}`,
      'UNAUTHORIZED',
    );
  });

  it('refuses a token signed by another private key, and an expired one with TOKEN_EXPIRED', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    await expectRefused(pk.url, `Bearer ${jwt.sign({ sub: 'x' }, other, { algorithm: 'ES256', expiresIn: 600 })}`, 'UNAUTHORIZED');
    const expired = forge({ alg: 'ES256', typ: 'JWT' }, { sub: 'x', exp: now() - 60 }, (input) =>
      cryptoSign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }),
    );
    await expectRefused(pk.url, `Bearer ${expired}`, 'TOKEN_EXPIRED');
  });
});
