// `npm run bench:jwt`: the cost of verifying one token, as the handshake and every REST call do: jsonwebtoken
// given the key as configured (a string) against the gateway's verifier, which makes a key object once.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { createTokenVerifier } from '../src/auth/jwt.ts';
import { loadConfig } from '../src/config.ts';
import { readCommandLine } from './lib/cli.ts';

const ROUNDS = 3;
const PER_ROUND = 20_000;

readCommandLine(
  'bench:jwt',
  `Usage: npm run bench:jwt [-- --help]

The cost of verifying one token, as the handshake and every REST call do: jsonwebtoken given the key as
configured (a string) against the gateway's verifier (a key object made once), for HS256 with a secret and ES256
with a PEM public key. Keys are made up per run; prints microseconds per call, the median of ${ROUNDS} rounds.
Starts nothing and reads no environment variable.

Options
  -h, --help    this text

Example
  npm run bench:jwt
`,
);

const secret = randomBytes(48).toString('base64url');
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const cases = [
  {
    name: 'HS256, secret',
    env: { JWT_SECRET: secret },
    token: jwt.sign({}, secret, { algorithm: 'HS256', subject: 'u', expiresIn: 3600 }),
  },
  {
    name: 'ES256, PEM public key',
    env: { JWT_PUBLIC_KEY: publicPem, JWT_ALGORITHMS: 'ES256' },
    token: jwt.sign({}, privateKey, { algorithm: 'ES256', subject: 'u', expiresIn: 3600 }),
  },
];

/** Mean microseconds per call of `fn` over `n` calls. */
function timeEach(n: number, fn: () => unknown): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - start) / n / 1000;
}

for (const c of cases) {
  const auth = loadConfig(c.env).auth;
  const options = { algorithms: auth.algorithms as jwt.Algorithm[] };
  const verify = createTokenVerifier(auth);
  const perCall = (n: number) => ({
    asString: timeEach(n, () => jwt.verify(c.token, auth.key, options)),
    gateway: timeEach(n, () => verify(c.token)),
  });
  perCall(PER_ROUND / 4); // warm-up
  const rounds = Array.from({ length: ROUNDS }, () => perCall(c.name.startsWith('ES') ? PER_ROUND / 10 : PER_ROUND));
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const asString = median(rounds.map((r) => r.asString));
  const gateway = median(rounds.map((r) => r.gateway));
  console.log(
    `${c.name.padEnd(24)} key as a string ${asString.toFixed(1).padStart(6)} µs   gateway's verifier ${gateway.toFixed(1).padStart(6)} µs   (median of ${ROUNDS} rounds)`,
  );
}
