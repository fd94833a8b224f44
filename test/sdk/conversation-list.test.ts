// The SDK's conversation list and token helpers: pure logic, no sockets.
import { describe, expect, it } from 'vitest';
import { ConversationList } from '../../src/sdk/conversation-list.ts';
import { jwtExp, jwtSub, randomId } from '../../src/sdk/token.ts';
import type { ConversationDto } from '../../src/shared/events.ts';

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
const conv = (id: string, s: number, over: Partial<ConversationDto> = {}): ConversationDto => ({
  id,
  title: id,
  lastSeq: 0,
  createdAt: at(0),
  updatedAt: at(s),
  ...over,
});

describe('ConversationList', () => {
  it('orders by activity and dedupes an ack and its broadcast', () => {
    const l = new ConversationList();
    expect(l.upsert(conv('a', 1))).not.toBeNull();
    expect(l.upsert(conv('b', 2))).not.toBeNull();
    expect(l.upsert(conv('a', 1))).toBeNull();
    expect(l.all().map((c) => c.id)).toEqual(['b', 'a']);
    expect(l.upsert(conv('a', 3, { title: 'renamed' }))?.title).toBe('renamed');
    expect(l.all().map((c) => c.id)).toEqual(['a', 'b']);
  });

  it('a deletion is reported once and not undone by a late update', () => {
    const l = new ConversationList();
    l.upsert(conv('a', 1));
    expect(l.remove('a')).toBe(true);
    expect(l.remove('a')).toBe(false);
    expect(l.upsert(conv('a', 5))).toBeNull();
  });

  it('reconcile removes what the first page should hold but does not, sparing entries changed meanwhile', () => {
    const l = new ConversationList();
    for (const c of [conv('a', 1), conv('b', 2), conv('c', 3)]) l.upsert(c);
    const before = l.snapshot();
    l.upsert(conv('d', 4)); // created by a live event while the list request was in flight
    const { changed, removed } = l.reconcile(before, { conversations: [conv('c', 3), conv('a', 6)], nextCursor: null });
    expect(changed.map((c) => c.id)).toEqual(['a']);
    expect(removed).toEqual(['b']);
    expect(l.all().map((c) => c.id)).toEqual(['a', 'd', 'c']);
  });

  it('with a next cursor, only entries at least as recent as the page are judged', () => {
    const l = new ConversationList();
    for (const c of [conv('old', 1), conv('gone', 5), conv('kept', 6)]) l.upsert(c);
    const { removed } = l.reconcile(l.snapshot(), { conversations: [conv('kept', 6), conv('x', 4)], nextCursor: 'next' });
    expect(removed).toEqual(['gone']);
    expect(l.get('old')).toBeDefined();
  });

  it('a new message bumps lastSeq and updatedAt', () => {
    const l = new ConversationList();
    l.upsert(conv('a', 1, { lastSeq: 2 }));
    const bumped = l.bump({
      id: 'm',
      conversationId: 'a',
      seq: 3,
      role: 'user',
      status: 'complete',
      content: 'x',
      metadata: null,
      clientMessageId: null,
      createdAt: at(9),
      updatedAt: at(9),
    });
    expect(bumped).toMatchObject({ lastSeq: 3, updatedAt: at(9) });
  });
});

describe('token helpers', () => {
  const b64url = (o: object) => btoa(JSON.stringify(o)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

  it('reads exp from a JWT payload without verifying it', () => {
    expect(jwtExp(`${b64url({ alg: 'HS256' })}.${b64url({ sub: 'ü?>~', exp: 1767225600 })}.sig`)).toBe(1767225600);
    expect(jwtExp('not-a-jwt')).toBeUndefined();
    expect(jwtExp(`x.${b64url({ sub: 'a' })}.y`)).toBeUndefined();
    // A payload that is not JSON (a token of another kind, an opaque one) is read as no exp, never thrown on.
    expect(jwtExp(`x.${btoa('not json')}.y`)).toBeUndefined();
  });

  it('reads sub from a JWT payload without verifying it, as UTF-8', () => {
    const utf8 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    expect(jwtSub(`${utf8({ alg: 'HS256' })}.${utf8({ sub: 'zoë-名前', exp: 1767225600 })}.sig`)).toBe('zoë-名前');
    expect(jwtSub('not-a-jwt')).toBeUndefined();
    expect(jwtSub(`x.${utf8({ sub: 42 })}.y`)).toBeUndefined();
    expect(jwtSub(`x.${utf8(['sub'])}.y`)).toBeUndefined();
  });

  it('makes v4 UUIDs', () => {
    expect(randomId()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
