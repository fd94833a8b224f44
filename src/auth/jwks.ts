// The identity provider's signing keys (JWT_JWKS_URL): fetched at start-up, kept in memory, fetched again on a
// schedule and when a token names a key not yet seen, and kept when the provider cannot be reached.
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from 'jose';
import type { Logger } from '../observability/logger.ts';
import { fits, type JwksSettings } from './keys.ts';

/** A provider that does not answer within this is taken as down for this attempt; the cached keys go on serving. */
const FETCH_TIMEOUT_MS = 5_000;
/** A key set is a few kilobytes; anything near this is not one, and is not read into memory whole. */
const MAX_JWKS_BYTES = 1 << 20;
/** Retries after a failed fetch back off from 1 s to this (or to the refresh interval, if shorter). */
const MAX_RETRY_MS = 60_000;
/** The key types a signing key in a public set can have. Never `oct`: a secret published in a set would let anyone sign. */
const PUBLIC_KEY_TYPES = ['RSA', 'EC', 'OKP'];

/**
 * `ok`: keys from the latest fetch; `stale`: the latest fetch failed, the keys of an earlier one still verify;
 * `unavailable`: no keys yet, every token is refused.
 */
export type JwksState = 'ok' | 'stale' | 'unavailable';

export interface JwksKeys {
  /** Finds the key for a token's header, as jose's jwtVerify asks for it; a kid not in the set may fetch it again. */
  keyFor: JWTVerifyGetKey;
  state(): JwksState;
  /** The first fetch, awaited by the start (bounded by FETCH_TIMEOUT_MS); a failure is logged, and retried in the background. */
  start(): Promise<void>;
  /** Fetches now, unless a fetch is under way (then waits for it); never rejects. */
  refresh(): Promise<void>;
  stop(): void;
}

export interface JwksOptions extends JwksSettings {
  /** The pinned algorithms: a set with no key for any of them is refused (it would refuse every token). */
  algorithms: string[];
  log: Logger;
  /** Tests shorten it. */
  fetchTimeoutMs?: number;
}

/**
 * jose verifies the tokens and picks the key (`createLocalJWKSet`: by kid, algorithm, key type, curve and `use`).
 * Fetching is done here rather than by jose's `createRemoteJWKSet`, for two reasons: past its cache age that one
 * refuses every token while the provider is down (it waits for a fetch that fails), and its cooldown counts from
 * the last fetch that succeeded, so while the provider fails, every token with an unknown kid fetches again.
 * Here a fetch of any outcome starts the cooldown, and the last good set serves until a new one arrives.
 */
export function createJwksKeys(o: JwksOptions): JwksKeys {
  const log = o.log.child({ jwks: o.url });
  const timeoutMs = o.fetchTimeoutMs ?? FETCH_TIMEOUT_MS;
  const stopped = new AbortController();
  let local: ReturnType<typeof createLocalJWKSet> | undefined;
  let kids: string[] = [];
  let lastBody: string | undefined;
  let lastOk = false;
  let failures = 0;
  /** When the latest fetch began (any outcome): the cooldown counts from it. */
  let lastAttemptAt = Number.NEGATIVE_INFINITY;
  let inflight: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  async function fetchOnce(): Promise<void> {
    lastAttemptAt = performance.now();
    try {
      const body = await download(o.url, AbortSignal.any([AbortSignal.timeout(timeoutMs), stopped.signal]));
      // The same set as last time: keep the keys jose has already imported.
      if (body !== lastBody || !local) install(body);
      failures = 0;
      lastOk = true;
    } catch (err) {
      if (stopped.signal.aborted) return;
      failures++;
      lastOk = false;
      const reason = (err as Error).message;
      if (local) log.warn({ reason, kids }, 'JWKS fetch failed; the keys fetched before go on verifying tokens');
      else log.error({ reason }, 'JWKS fetch failed and no keys are cached: every token is refused until a fetch succeeds');
    }
  }

  function install(body: string) {
    const { set, skipped } = usableKeys(JSON.parse(body) as unknown, o.algorithms);
    const next = createLocalJWKSet(set);
    const nextKids = set.keys.map((k) => k.kid ?? '(no kid)');
    const added = nextKids.filter((k) => !kids.includes(k));
    const removed = kids.filter((k) => !nextKids.includes(k));
    if (skipped) log.warn({ skipped }, 'JWKS keys skipped: not public signing keys of a supported type');
    if (added.length || removed.length) log.info({ kids: nextKids, added, removed }, 'JWKS keys updated');
    local = next;
    kids = nextKids;
    lastBody = body;
  }

  function schedule() {
    clearTimeout(timer);
    if (stopped.signal.aborted) return;
    const delay = failures === 0 ? o.refreshMs : Math.min(o.refreshMs, MAX_RETRY_MS, 1000 * 2 ** (failures - 1));
    // Unref'd: a pending refresh must not keep a process alive that has nothing else to do.
    timer = setTimeout(() => void refresh(), delay).unref();
  }

  function refresh(): Promise<void> {
    inflight ??= fetchOnce().finally(() => {
      inflight = undefined;
      schedule();
    });
    return inflight;
  }

  const keyFor: JWTVerifyGetKey = async (header, token) => {
    if (local) {
      try {
        return await local(header, token);
      } catch (err) {
        if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      }
    }
    // A kid not in the set (or no set yet): the provider may have published a new key. Fetch again, but at most
    // once per cooldown: made-up kids cost the provider nothing more, and are refused meanwhile.
    if (inflight) await inflight;
    else if (performance.now() - lastAttemptAt >= o.cooldownMs) await refresh();
    else throw new errors.JWKSNoMatchingKey();
    if (!local) throw new errors.JWKSNoMatchingKey();
    return local(header, token);
  };

  return {
    keyFor,
    state: () => (!local ? 'unavailable' : lastOk ? 'ok' : 'stale'),
    start: refresh,
    refresh,
    stop() {
      stopped.abort();
      clearTimeout(timer);
    },
  };
}

/** GETs the set, with a bounded time and size; anything but 200 with a body is a failure. */
async function download(url: string, signal: AbortSignal): Promise<string> {
  // Redirects are not followed: one could lead from https to plain http. The operator sets the final address.
  const res = await fetch(url, { signal, redirect: 'manual', headers: { accept: 'application/jwk-set+json, application/json' } });
  if (res.status !== 200) {
    await res.body?.cancel();
    const location = res.headers.get('location');
    throw new Error(`answered HTTP ${res.status}${location ? ` (a redirect to ${location}: set JWT_JWKS_URL to the final address)` : ''}`);
  }
  if (!res.body) throw new Error('answered with no body');
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    if (size > MAX_JWKS_BYTES) {
      await res.body.cancel();
      throw new Error(`answered more than ${MAX_JWKS_BYTES} bytes: not a key set`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The public signing keys of a set. A set with none that fits a pinned algorithm is refused as a whole (the keys
 * fetched before are kept): published as is, it would refuse every token.
 */
function usableKeys(json: unknown, algorithms: string[]): { set: JSONWebKeySet; skipped: number } {
  if (typeof json !== 'object' || json === null || !Array.isArray((json as { keys?: unknown }).keys)) {
    throw new Error('answered something that is not a key set (no "keys" array)');
  }
  const all = (json as { keys: unknown[] }).keys;
  const keys = all.filter((k): k is JWK => isPublicSigningKey(k));
  const fitting = keys.filter((k) => algorithms.some((alg) => (k.alg === undefined || k.alg === alg) && fits(publicKeyOf(k), alg)));
  if (fitting.length === 0) {
    throw new Error(`none of its ${all.length} keys can verify ${algorithms.join(', ')} (JWT_ALGORITHMS)`);
  }
  return { set: { keys }, skipped: all.length - keys.length };
}

function isPublicSigningKey(k: unknown): boolean {
  if (typeof k !== 'object' || k === null) return false;
  const jwk = k as JWK;
  if (!PUBLIC_KEY_TYPES.includes(jwk.kty ?? '') || (jwk.use !== undefined && jwk.use !== 'sig')) return false;
  // A private key published by mistake is not used: the provider's mistake must not become ours.
  if ('d' in jwk) return false;
  try {
    publicKeyOf(jwk);
    return true;
  } catch {
    return false;
  }
}

function publicKeyOf(jwk: JWK) {
  return createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
}
