// The key policy: which keys and algorithms verify tokens, checked once at start-up.
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { ConfigError } from '../shared/errors.ts';

/** The JWT settings as configured (JWT_SECRET, JWT_PUBLIC_KEY, JWT_ALGORITHMS, JWT_ISSUER, JWT_AUDIENCE). */
export interface KeySettings {
  secret?: string;
  publicKey?: string;
  algorithms?: string[];
  issuer?: string;
  audience?: string;
}

export interface AuthConfig {
  /** HS secret or PEM public key, as configured; `demo` is true when neither was configured and a secret was made up. */
  key: string;
  /**
   * The same key, parsed once at start-up: tokens are verified with it. Given the string, jsonwebtoken would
   * parse it again for every token, first as a PEM public key, catching the failure (`npm run bench:jwt`).
   */
  keyObject: KeyObject;
  algorithms: string[];
  issuer?: string;
  audience?: string;
  demo: boolean;
}

const SYMMETRIC = ['HS256', 'HS384', 'HS512'];
const RSA = { types: ['rsa'] };
const RSA_PSS = { types: ['rsa', 'rsa-pss'] };
/** Each asymmetric algorithm, with the key type (and curve) it verifies with (RFC 7518 §3.3–3.5). */
const KEY_FOR_ALGORITHM: Record<string, { types: string[]; curve?: string }> = {
  RS256: RSA,
  RS384: RSA,
  RS512: RSA,
  PS256: RSA_PSS,
  PS384: RSA_PSS,
  PS512: RSA_PSS,
  ES256: { types: ['ec'], curve: 'prime256v1' },
  ES384: { types: ['ec'], curve: 'secp384r1' },
  ES512: { types: ['ec'], curve: 'secp521r1' },
};
const ASYMMETRIC = Object.keys(KEY_FOR_ALGORITHM);
/** HS256 keys shorter than the hash output are brute-forceable (RFC 7518 §3.2). */
const MIN_SECRET_BYTES = 32;

/**
 * Decides how tokens are verified: an HS secret, or a public key with the algorithms it can verify, or (neither
 * configured, and the caller offers one) a secret made up for demo mode. Anything unsafe or unusable stops the start.
 */
export function authConfig(e: KeySettings, makeDemoSecret?: () => string): AuthConfig {
  const common = { issuer: e.issuer, audience: e.audience };
  if (e.secret && e.publicKey) {
    throw new ConfigError('set JWT_SECRET or JWT_PUBLIC_KEY, not both');
  }
  if (e.algorithms?.some((a) => a.toLowerCase() === 'none')) {
    throw new ConfigError('JWT_ALGORITHMS must never contain "none"');
  }
  if (e.algorithms?.length === 0) {
    throw new ConfigError('JWT_ALGORITHMS names no algorithm');
  }
  if (e.publicKey) {
    const bad = (e.algorithms ?? []).filter((a) => !ASYMMETRIC.includes(a));
    if (bad.length) throw new ConfigError(`JWT_ALGORITHMS ${bad.join(',')} cannot be used with JWT_PUBLIC_KEY`);
    // PEM keys are often passed on one line with literal \n.
    const key = e.publicKey.replace(/\\n/g, '\n').trim();
    const keyObject = parsePublicKey(key);
    // Unset, the algorithms are those of RS256 and ES256 that the key can verify.
    const algorithms = e.algorithms ?? ['RS256', 'ES256'].filter((a) => fits(keyObject, a));
    const unfit = algorithms.filter((a) => !fits(keyObject, a));
    if (unfit.length || algorithms.length === 0) {
      const curve = keyObject.asymmetricKeyDetails?.namedCurve;
      const what = `the ${keyObject.asymmetricKeyType}${curve ? ` ${curve}` : ''} key in JWT_PUBLIC_KEY`;
      throw new ConfigError(
        unfit.length
          ? `JWT_ALGORITHMS ${unfit.join(',')} cannot verify with ${what}`
          : `neither RS256 nor ES256 fits ${what}; set JWT_ALGORITHMS`,
      );
    }
    return { ...common, key, keyObject, algorithms, demo: false };
  }
  const algorithms = e.algorithms ?? ['HS256'];
  const bad = algorithms.filter((a) => !SYMMETRIC.includes(a));
  if (bad.length) throw new ConfigError(`JWT_ALGORITHMS ${bad.join(',')} cannot be used with JWT_SECRET`);
  if (e.secret) {
    if (Buffer.byteLength(e.secret) < MIN_SECRET_BYTES) {
      throw new ConfigError(`JWT_SECRET is ${Buffer.byteLength(e.secret)} bytes; at least ${MIN_SECRET_BYTES} are required`);
    }
    // A public key used as an HMAC secret lets anyone who has it (everyone) sign tokens.
    if (parsesAsKey(e.secret)) {
      throw new ConfigError('JWT_SECRET holds a key in PEM form; a public key goes in JWT_PUBLIC_KEY');
    }
    return { ...common, key: e.secret, keyObject: createSecretKey(Buffer.from(e.secret)), algorithms, demo: false };
  }
  if (!makeDemoSecret) {
    throw new ConfigError('no JWT_SECRET or JWT_PUBLIC_KEY configured');
  }
  const secret = makeDemoSecret();
  return { ...common, key: secret, keyObject: createSecretKey(Buffer.from(secret)), algorithms: ['HS256'], demo: true };
}

/**
 * Parses JWT_PUBLIC_KEY. Otherwise a key that is not one, or that fits none of the algorithms, would start a
 * gateway that refuses every token without saying why.
 */
function parsePublicKey(pem: string): KeyObject {
  // A private key would parse (its public half is derived), but it has no place in a verifier's configuration.
  if (/PRIVATE KEY-----/.test(pem)) {
    throw new ConfigError('JWT_PUBLIC_KEY holds a private key; give the public key only');
  }
  try {
    return createPublicKey(pem);
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new ConfigError(`JWT_PUBLIC_KEY is not a public key in PEM form${code ? ` (${code})` : ''}`);
  }
}

/** Whether `key` can verify tokens signed with the asymmetric `algorithm`. */
function fits(key: KeyObject, algorithm: string): boolean {
  const need = KEY_FOR_ALGORITHM[algorithm];
  if (!need?.types.includes(key.asymmetricKeyType ?? '')) return false;
  return need.curve === undefined || key.asymmetricKeyDetails?.namedCurve === need.curve;
}

function parsesAsKey(text: string): boolean {
  try {
    createPublicKey(text);
    return true;
  } catch {
    return false;
  }
}
