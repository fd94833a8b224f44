// The affinity key is what a load balancer hashes on: it must be the same for a user in every SDK (browser or Node,
// any version that speaks this protocol), so it is a fixed, published function: 32-bit FNV-1a over the UTF-8 bytes.
import { describe, expect, it } from 'vitest';
import { affinityKey } from '../../src/sdk/index.ts';

describe('affinityKey', () => {
  it('is FNV-1a (32 bits) of the UTF-8 user id, as 8 hex digits', () => {
    // The published FNV-1a test vectors.
    expect(affinityKey('')).toBe('811c9dc5');
    expect(affinityKey('a')).toBe('e40c292c');
    expect(affinityKey('foobar')).toBe('bf9cf968');
    // Non-ASCII ids hash their UTF-8 bytes (U+00E9 is C3 A9), as any other implementation would; not UTF-16 code
    // units (E9 alone would give 6c0b6c44).
    expect(affinityKey('\u00e9')).toBe('1e9de8c1');
    expect(affinityKey('\u00e9')).not.toBe(affinityKey('e\u0301'));
  });

  it('does not carry the user id: ids of any length give 8 hex digits', () => {
    for (const id of ['u', 'user-42@example.com', 'x'.repeat(255)]) expect(affinityKey(id)).toMatch(/^[0-9a-f]{8}$/);
  });
});
