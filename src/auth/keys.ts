// The key policy: which keys and algorithms verify tokens, checked once at start-up.
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { ConfigError } from '../shared/errors.ts';

/**
 * The JWT settings as configured (JWT_SECRET, JWT_SECRET_PREVIOUS and their kids, JWT_PUBLIC_KEY, JWT_JWKS_URL and its
 * timings, JWT_ALGORITHMS, JWT_ISSUER, JWT_AUDIENCE).
 */
export interface KeySettings {
  secret?: string;
  secretKid?: string;
  previousSecret?: string;
  previousSecretKid?: string;
  publicKey?: string;
  jwksUrl?: string;
  jwksRefreshS?: number;
  jwksCooldownS?: number;
  algorithms?: string[];
  issuer?: string;
  audience?: string;
}

interface AuthCommon {
  algorithms: string[];
  issuer?: string;
  audience?: string;
  /** True when no key was configured and a secret was made up (demo mode). */
  demo: boolean;
}

/** One HS secret, parsed once, with the `kid` that names it in tokens (when one is configured). */
export interface SecretKey {
  keyObject: KeyObject;
  kid?: string;
}

/** An HS secret (JWT_SECRET), and during a rotation the previous one (JWT_SECRET_PREVIOUS). */
export interface SecretAuth extends AuthCommon {
  kind: 'secret';
  /** The secret as configured (or made up for demo mode): the demo route signs with it. */
  key: string;
  /**
   * The same key, parsed once at start-up: tokens are verified with it. Given the string, jsonwebtoken would
   * parse it again for every token, first as a PEM public key, catching the failure (`npm run bench:jwt`).
   */
  keyObject: KeyObject;
  kid?: string;
  previous?: SecretKey;
}

/** One PEM public key (JWT_PUBLIC_KEY). */
export interface PublicKeyAuth extends AuthCommon {
  kind: 'publicKey';
  key: string;
  keyObject: KeyObject;
}

/** The identity provider's published keys (JWT_JWKS_URL), fetched and refreshed by jwks.ts. */
export interface JwksAuth extends AuthCommon {
  kind: 'jwks';
  jwks: JwksSettings;
}

export interface JwksSettings {
  url: string;
  /** The schedule: the set is fetched again this often, so a provider's new and retired keys are seen without a restart. */
  refreshMs: number;
  /** The rate bound: a token whose `kid` is unknown fetches the set again only if no fetch began within this. */
  cooldownMs: number;
}

export type AuthConfig = SecretAuth | PublicKeyAuth | JwksAuth;

const SYMMETRIC = ['HS256', 'HS384', 'HS512'];
const RSA = { types: ['rsa'] };
const RSA_PSS = { types: ['rsa', 'rsa-pss'] };
/** Each asymmetric algorithm, with the key type (and curve) it verifies with (RFC 7518 §3.3–3.5, RFC 8037 §3.1). */
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
  EdDSA: { types: ['ed25519'] },
};
/** jsonwebtoken, which verifies with JWT_PUBLIC_KEY, has no EdDSA; the JWKS verifier (jose) has. */
const JWKS_ONLY = ['EdDSA'];
const PUBLIC_KEY_ALGORITHMS = Object.keys(KEY_FOR_ALGORITHM).filter((a) => !JWKS_ONLY.includes(a));
const JWKS_ALGORITHMS = Object.keys(KEY_FOR_ALGORITHM);
/** What identity providers sign with: Auth0, Keycloak and Clerk RS256, many ES256, Better Auth EdDSA (Ed25519). */
const JWKS_DEFAULT_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'];
/** HS256 keys shorter than the hash output are brute-forceable (RFC 7518 §3.2). */
const MIN_SECRET_BYTES = 32;
const DEFAULT_JWKS_REFRESH_S = 600;
const DEFAULT_JWKS_COOLDOWN_S = 30;

/**
 * Decides how tokens are verified: an HS secret (and during a rotation the previous one), a public key with the
 * algorithms it can verify, an identity provider's JWKS, or (none configured, and the caller offers one) a secret
 * made up for demo mode. Anything unsafe or unusable stops the start.
 */
export function authConfig(e: KeySettings, makeDemoSecret?: () => string): AuthConfig {
  const common = { issuer: e.issuer, audience: e.audience, demo: false };
  const configured = [e.secret && 'JWT_SECRET', e.publicKey && 'JWT_PUBLIC_KEY', e.jwksUrl && 'JWT_JWKS_URL'].filter(Boolean);
  if (configured.length > 1) {
    throw new ConfigError(`set one of JWT_SECRET, JWT_PUBLIC_KEY and JWT_JWKS_URL, not ${configured.join(' and ')}`);
  }
  if (e.algorithms?.some((a) => a.toLowerCase() === 'none')) {
    throw new ConfigError('JWT_ALGORITHMS must never contain "none"');
  }
  if (e.algorithms?.length === 0) {
    throw new ConfigError('JWT_ALGORITHMS names no algorithm');
  }
  if (!e.secret && (e.previousSecret || e.secretKid || e.previousSecretKid)) {
    throw new ConfigError('JWT_SECRET_PREVIOUS, JWT_SECRET_KID and JWT_SECRET_PREVIOUS_KID go with JWT_SECRET');
  }
  if (e.jwksUrl) {
    const algorithms = e.algorithms ?? JWKS_DEFAULT_ALGORITHMS;
    const bad = algorithms.filter((a) => !JWKS_ALGORITHMS.includes(a));
    // An HS algorithm here would verify with whatever a JWKS holds as a secret, or with a public key's text.
    if (bad.length) throw new ConfigError(`JWT_ALGORITHMS ${bad.join(',')} cannot be used with JWT_JWKS_URL`);
    const jwks = {
      url: jwksUrl(e.jwksUrl),
      refreshMs: (e.jwksRefreshS ?? DEFAULT_JWKS_REFRESH_S) * 1000,
      cooldownMs: (e.jwksCooldownS ?? DEFAULT_JWKS_COOLDOWN_S) * 1000,
    };
    return { ...common, kind: 'jwks', jwks, algorithms };
  }
  if (e.publicKey) {
    const bad = (e.algorithms ?? []).filter((a) => !PUBLIC_KEY_ALGORITHMS.includes(a));
    if (bad.length) {
      const eddsa = bad.some((a) => JWKS_ONLY.includes(a)) ? ' (EdDSA is verified with JWT_JWKS_URL only)' : '';
      throw new ConfigError(`JWT_ALGORITHMS ${bad.join(',')} cannot be used with JWT_PUBLIC_KEY${eddsa}`);
    }
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
    return { ...common, kind: 'publicKey', key, keyObject, algorithms };
  }
  const algorithms = e.algorithms ?? ['HS256'];
  const bad = algorithms.filter((a) => !SYMMETRIC.includes(a));
  if (bad.length) throw new ConfigError(`JWT_ALGORITHMS ${bad.join(',')} cannot be used with JWT_SECRET`);
  if (e.secret) {
    const current = secretKey('JWT_SECRET', e.secret, e.secretKid);
    let previous: SecretKey | undefined;
    if (e.previousSecret) {
      if (e.previousSecret === e.secret) throw new ConfigError('JWT_SECRET_PREVIOUS is the same as JWT_SECRET');
      if (e.secretKid && e.secretKid === e.previousSecretKid) {
        throw new ConfigError('JWT_SECRET_KID and JWT_SECRET_PREVIOUS_KID must differ: a kid names one secret');
      }
      previous = secretKey('JWT_SECRET_PREVIOUS', e.previousSecret, e.previousSecretKid);
    } else if (e.previousSecretKid) {
      throw new ConfigError('JWT_SECRET_PREVIOUS_KID is set but JWT_SECRET_PREVIOUS is not');
    }
    return { ...common, kind: 'secret', key: e.secret, ...current, previous, algorithms };
  }
  if (!makeDemoSecret) {
    throw new ConfigError('no JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL configured');
  }
  const secret = makeDemoSecret();
  return { ...common, kind: 'secret', key: secret, keyObject: createSecretKey(Buffer.from(secret)), algorithms: ['HS256'], demo: true };
}

/** Checks one HS secret as JWT_SECRET or JWT_SECRET_PREVIOUS and parses it once. */
function secretKey(name: string, secret: string, kid: string | undefined): SecretKey {
  if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    throw new ConfigError(`${name} is ${Buffer.byteLength(secret)} bytes; at least ${MIN_SECRET_BYTES} are required`);
  }
  // A public key used as an HMAC secret lets anyone who has it (everyone) sign tokens.
  if (parsesAsKey(secret)) {
    throw new ConfigError(`${name} holds a key in PEM form; a public key goes in JWT_PUBLIC_KEY`);
  }
  return { keyObject: createSecretKey(Buffer.from(secret)), ...(kid ? { kid } : {}) };
}

/**
 * JWT_JWKS_URL must be HTTPS: whoever can change the keys in transit can sign tokens for any user. Plain HTTP is
 * accepted on a loopback address only, where nothing travels over a network (tests, a provider on the same host).
 */
function jwksUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError('JWT_JWKS_URL is not a URL');
  }
  if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname))) return url.href;
  throw new ConfigError('JWT_JWKS_URL must be an https:// URL (plain http:// only to 127.0.0.1, [::1] or localhost)');
}

function isLoopback(hostname: string): boolean {
  // The URL parser has already normalised the address (127.1 → 127.0.0.1, [0:0::1] → [::1]).
  const host = hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
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
export function fits(key: KeyObject, algorithm: string): boolean {
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
