// `npm run bench:jwt`: the cost of verifying one token, as the handshake and every REST call do: jsonwebtoken
// given the key as configured (a string) against the gateway's verifier, which makes a key object once, for each
// way of configuring keys (a secret, a secret during rotation, a PEM public key, a JWKS).
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import jwt from 'jsonwebtoken';
import { createJwksKeys } from '../src/auth/jwks.ts';
import { createTokenVerifier } from '../src/auth/jwt.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/observability/logger.ts';
import { readCommandLine } from './lib/cli.ts';

const ROUNDS = 3;
const PER_ROUND = 20_000;

readCommandLine(
  'bench:jwt',
  `Usage: npm run bench:jwt [-- --help]

The cost of verifying one token, as the handshake and every REST call do: jsonwebtoken given the key as
configured (a string) against the gateway's verifier (a key object made once; awaited, as its callers do), for
HS256 with a secret, HS256 with a token of the previous secret during a rotation (two signatures checked), ES256
with a PEM public key, and ES256, RS256 and EdDSA with a JWKS served on a loopback port of this process (keys
cached, as between refreshes). Keys are made up per run; prints microseconds per call, the median of ${ROUNDS} rounds.
Starts no other process and reads no environment variable.

Options
  -h, --help    this text

Example
  npm run bench:jwt
`,
);

const secret = randomBytes(48).toString('base64url');
const previousSecret = randomBytes(48).toString('base64url');
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed = generateKeyPairSync('ed25519');
const publicPem = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();

const jwk = (key: KeyObject, kid: string, alg: string) => ({ ...key.export({ format: 'jwk' }), kid, alg, use: 'sig' });
const jwksBody = JSON.stringify({
  keys: [jwk(ec.publicKey, 'ec', 'ES256'), jwk(rsa.publicKey, 'rsa', 'RS256'), jwk(ed.publicKey, 'ed', 'EdDSA')],
});
const jwksServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(jwksBody));
await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;

const signed = (alg: string, kid: string, key: KeyObject) =>
  new SignJWT({}).setProtectedHeader({ alg, kid }).setSubject('u').setExpirationTime('1h').sign(key);
const cases: { name: string; env: Record<string, string>; token: string; asString?: string }[] = [
  {
    name: 'HS256, secret',
    env: { JWT_SECRET: secret },
    token: jwt.sign({}, secret, { algorithm: 'HS256', subject: 'u', expiresIn: 3600 }),
    asString: secret,
  },
  {
    name: 'HS256, previous secret',
    env: { JWT_SECRET: secret, JWT_SECRET_PREVIOUS: previousSecret },
    token: jwt.sign({}, previousSecret, { algorithm: 'HS256', subject: 'u', expiresIn: 3600 }),
    asString: previousSecret,
  },
  {
    name: 'ES256, PEM public key',
    env: { JWT_PUBLIC_KEY: publicPem, JWT_ALGORITHMS: 'ES256' },
    token: jwt.sign({}, ec.privateKey, { algorithm: 'ES256', subject: 'u', expiresIn: 3600 }),
    asString: publicPem,
  },
  { name: 'ES256, JWKS', env: { JWT_JWKS_URL: jwksUrl }, token: await signed('ES256', 'ec', ec.privateKey) },
  { name: 'RS256, JWKS', env: { JWT_JWKS_URL: jwksUrl }, token: await signed('RS256', 'rsa', rsa.privateKey) },
  { name: 'EdDSA, JWKS', env: { JWT_JWKS_URL: jwksUrl }, token: await signed('EdDSA', 'ed', ed.privateKey) },
];

/** Mean microseconds per call of `fn` over `n` calls, each awaited (as the handshake and the REST guard do). */
async function timeEach(n: number, fn: () => unknown): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn();
  return Number(process.hrtime.bigint() - start) / n / 1000;
}

/** The same, for a synchronous call: jsonwebtoken as it was called before the verifier became asynchronous. */
function timeEachSync(n: number, fn: () => unknown): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - start) / n / 1000;
}

const log = createLogger('silent');
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const c of cases) {
  const auth = loadConfig(c.env).auth;
  const jwks = auth.kind === 'jwks' ? createJwksKeys({ ...auth.jwks, algorithms: auth.algorithms, log }) : undefined;
  await jwks?.start();
  const verify = createTokenVerifier(auth, jwks);
  const options = { algorithms: auth.algorithms as jwt.Algorithm[] };
  const perCall = async (n: number) => ({
    asString: c.asString === undefined ? Number.NaN : timeEachSync(n, () => jwt.verify(c.token, c.asString!, options)),
    gateway: await timeEach(n, () => verify(c.token)),
  });
  const n = c.name.startsWith('HS') ? PER_ROUND : PER_ROUND / 10;
  await perCall(n / 4); // warm-up
  const rounds = [];
  for (let i = 0; i < ROUNDS; i++) rounds.push(await perCall(n));
  const asString = median(rounds.map((r) => r.asString));
  const gateway = median(rounds.map((r) => r.gateway));
  const reference = Number.isNaN(asString) ? '     —' : asString.toFixed(1).padStart(6);
  console.log(
    `${c.name.padEnd(24)} key as a string ${reference} µs   gateway's verifier ${gateway.toFixed(1).padStart(6)} µs   (median of ${ROUNDS} rounds)`,
  );
  jwks?.stop();
}
jwksServer.close();
