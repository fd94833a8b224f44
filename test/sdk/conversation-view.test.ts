// The SDK's pure view logic: dedupe by seq, ordering, delta rules, gap detection, final-beats-streaming.
import { describe, expect, it } from 'vitest';
import { ConversationView, mergeToolCalls, supersedes, toolCallsOf } from '../../src/sdk/conversation-view.ts';
import type { MessageDto, ToolCallDto } from '../../src/shared/events.ts';

const CID = 'c1';
const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();

function msg(seq: number, over: Partial<MessageDto> = {}): MessageDto {
  return {
    id: `m${seq}`,
    conversationId: CID,
    seq,
    role: seq % 2 ? 'user' : 'assistant',
    status: 'complete',
    content: `text ${seq}`,
    metadata: null,
    clientMessageId: null,
    createdAt: at(seq),
    updatedAt: at(seq),
    ...over,
  };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => msg(from + i));
const seqs = (v: ConversationView) => v.messages().map((m) => m.seq);
const streaming = (seq: number, content = '', deltaIndex?: number) =>
  msg(seq, { role: 'assistant', status: 'streaming', content, metadata: deltaIndex === undefined ? { replyToId: 'm1' } : { deltaIndex } });

function opened(from: number, to: number, hasMore = from > 1): ConversationView {
  const v = new ConversationView(CID);
  v.applyPage({ messages: range(from, to), hasMore }, 'latest');
  return v;
}

describe('dedupe and ordering', () => {
  it('keeps one message per seq across overlapping pages and events', () => {
    const v = opened(1, 5, false);
    expect(v.apply(msg(5))).toBeNull();
    expect(v.apply(msg(6))).not.toBeNull();
    expect(v.apply(msg(6))).toBeNull();
    const changed = v.applyPage({ messages: range(4, 8), hasMore: false }, 'newer');
    expect(changed.map((m) => m.seq)).toEqual([7, 8]);
    expect(seqs(v)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(v.lastSeq).toBe(8);
    expect(v.gap()).toBeNull();
  });

  it('sorts by seq whatever the arrival order', () => {
    const v = opened(1, 2, false);
    for (const m of [msg(5), msg(3), msg(4)]) v.apply(m);
    expect(seqs(v)).toEqual([1, 2, 3, 4, 5]);
    expect(v.lastSeq).toBe(5);
  });

  it('dedupes by id too, and ignores messages of other conversations', () => {
    const v = opened(1, 3, false);
    expect(v.apply({ ...msg(3), seq: 9 })).toBeNull();
    expect(v.apply(msg(4, { conversationId: 'other' }))).toBeNull();
    expect(seqs(v)).toEqual([1, 2, 3]);
  });

  it('keeps events that arrive while the first page is loading, and merges the page without duplicates', () => {
    const v = new ConversationView(CID);
    v.apply(msg(10));
    v.apply(msg(11));
    expect(v.loaded).toBe(false);
    expect(v.gap()).toBeNull();
    v.applyPage({ messages: range(6, 10), hasMore: true }, 'latest');
    expect(seqs(v)).toEqual([6, 7, 8, 9, 10, 11]);
    expect(v.firstSeq).toBe(6);
    expect(v.lastSeq).toBe(11);
    expect(v.hasOlder).toBe(true);
  });

  it('pages back with older pages, extending the window downwards', () => {
    const v = opened(51, 100, true);
    expect(v.firstSeq).toBe(51);
    const older = v.applyPage({ messages: range(1, 51), hasMore: false }, 'older');
    expect(older.map((m) => m.seq)).toEqual(range(1, 50).map((m) => m.seq));
    expect(v.firstSeq).toBe(1);
    expect(v.hasOlder).toBe(false);
    expect(v.lastSeq).toBe(100);
    expect(v.messages()).toHaveLength(100);
  });

  it('opens an empty conversation at lastSeq 0', () => {
    const v = new ConversationView(CID);
    v.applyPage({ messages: [], hasMore: false, conversation: { lastSeq: 0 } }, 'latest');
    expect(v.lastSeq).toBe(0);
    v.apply(msg(1));
    expect(v.lastSeq).toBe(1);
    expect(v.gap()).toBeNull();
  });
});

describe('gap detection', () => {
  it('returns the `after` to fetch when a created message skips seqs', () => {
    const v = opened(1, 5, false);
    v.apply(msg(8));
    expect(v.gap()).toBe(5);
    expect(seqs(v)).toEqual([1, 2, 3, 4, 5, 8]);
    const filled = v.applyPage({ messages: range(6, 8), hasMore: false }, 'newer');
    expect(filled.map((m) => m.seq)).toEqual([6, 7]);
    expect(v.gap()).toBeNull();
    expect(v.lastSeq).toBe(8);
  });

  it('fills across several pages, reporting the next `after` each time', () => {
    const v = opened(1, 2, false);
    v.apply(msg(10));
    expect(v.gap()).toBe(2);
    v.applyPage({ messages: range(3, 5), hasMore: true }, 'newer');
    expect(v.gap()).toBe(5);
    v.applyPage({ messages: range(6, 10), hasMore: false }, 'newer');
    expect(v.gap()).toBeNull();
  });

  it('sees a gap right after the first page when an early event was beyond it', () => {
    const v = new ConversationView(CID);
    v.apply(msg(9));
    v.applyPage({ messages: range(1, 6), hasMore: false }, 'latest');
    expect(v.gap()).toBe(6);
  });

  it('a seeded window (followed from a send) starts at the seed', () => {
    const v = new ConversationView(CID);
    v.seed(msg(7));
    expect(v.firstSeq).toBe(7);
    expect(v.lastSeq).toBe(7);
    expect(v.hasOlder).toBe(true);
    v.apply(msg(9));
    expect(v.gap()).toBe(7);
    // Older than the window: left to loadOlder, so the view never shows a hole below its start.
    expect(v.apply(msg(5))).toBeNull();
    v.applyPage({ messages: range(4, 6), hasMore: true }, 'older');
    expect(seqs(v)).toEqual([4, 5, 6, 7, 9]);
    expect(v.gap()).toBe(7);
  });
});

describe('updates: final status beats streaming', () => {
  it('a final message:updated replaces the streaming one, and a late streaming copy does not undo it', () => {
    const v = opened(1, 1, false);
    v.apply(streaming(2));
    const done = msg(2, { role: 'assistant', content: 'whole text', updatedAt: at(30) });
    expect(v.apply(done)).toEqual(done);
    expect(v.apply(streaming(2, 'whole', 3))).toBeNull();
    expect(v.get('m2')?.status).toBe('complete');
    expect(v.get('m2')?.content).toBe('whole text');
  });

  it('between final versions the later updatedAt wins; equal ones are duplicates', () => {
    const a = msg(2, { status: 'stopped', updatedAt: at(10) });
    const b = msg(2, { status: 'complete', updatedAt: at(20) });
    expect(supersedes(b, a)).toBe(true);
    expect(supersedes(a, b)).toBe(false);
    expect(supersedes(a, a)).toBe(false);
  });

  it('between streaming versions the one holding more deltas wins', () => {
    expect(supersedes(streaming(2, 'abc', 3), streaming(2, 'ab', 2))).toBe(true);
    expect(supersedes(streaming(2, 'ab', 2), streaming(2, 'abc', 3))).toBe(false);
  });

  it('an updated message not seen before is stored like a created one', () => {
    const v = opened(1, 1, false);
    expect(v.apply(msg(2, { status: 'stopped' }))?.status).toBe('stopped');
    expect(v.lastSeq).toBe(2);
  });
});

describe('deltas', () => {
  const delta = (index: number, text: string, messageId = 'm2') => ({ conversationId: CID, messageId, index, text });

  it('applies the delta whose index equals the count the text holds, from 0 when deltaIndex is absent', () => {
    const v = opened(1, 1, false);
    v.apply(streaming(2));
    const r = v.applyDelta(delta(0, 'Hel'));
    expect(r).toMatchObject({ kind: 'applied', message: { content: 'Hel', metadata: { deltaIndex: 1 } } });
    expect(v.applyDelta(delta(1, 'lo')).kind).toBe('applied');
    expect(v.get('m2')?.content).toBe('Hello');
  });

  it('ignores a duplicate index', () => {
    const v = opened(1, 1, false);
    v.apply(streaming(2));
    v.applyDelta(delta(0, 'a'));
    expect(v.applyDelta(delta(0, 'a')).kind).toBe('duplicate');
    expect(v.get('m2')?.content).toBe('a');
  });

  it('does not apply an index ahead of the text (missed deltas): the text waits for message:updated', () => {
    const v = opened(1, 1, false);
    v.apply(streaming(2));
    v.applyDelta(delta(0, 'a'));
    expect(v.applyDelta(delta(2, 'c')).kind).toBe('ahead');
    expect(v.get('m2')?.content).toBe('a');
    v.apply(msg(2, { role: 'assistant', content: 'abc', updatedAt: at(40) }));
    expect(v.get('m2')?.content).toBe('abc');
  });

  it('continues from metadata.deltaIndex of a message loaded mid-reply', () => {
    const v = new ConversationView(CID);
    v.applyPage({ messages: [msg(1), streaming(2, 'partial', 4)], hasMore: false }, 'latest');
    expect(v.applyDelta(delta(3, 'x')).kind).toBe('duplicate');
    expect(v.applyDelta(delta(5, 'x')).kind).toBe('ahead');
    expect(v.applyDelta(delta(4, ' more')).kind).toBe('applied');
    expect(v.get('m2')?.content).toBe('partial more');
  });

  it('keeps live deltas when a staler persisted snapshot arrives (e.g. from a fill)', () => {
    const v = opened(1, 1, false);
    v.apply(streaming(2));
    for (const [i, t] of ['a', 'b', 'c'].entries()) v.applyDelta(delta(i, t));
    expect(v.apply(streaming(2, 'ab', 2))).toBeNull();
    expect(v.get('m2')?.content).toBe('abc');
  });

  it('ignores deltas for a final message, and reports unknown messages', () => {
    const v = opened(1, 2, false);
    expect(v.applyDelta(delta(0, 'late')).kind).toBe('final');
    expect(v.applyDelta(delta(0, 'x', 'nope')).kind).toBe('unknown');
  });
});

describe('re-reading messages still streaming (their later versions may have been missed)', () => {
  const reply = (over: Partial<MessageDto> = {}) => msg(2, { role: 'assistant', content: 'whole text', updatedAt: at(30), ...over });

  it('fillAfter reaches below the lowest held message still streaming, not below lastSeq otherwise', () => {
    const v = opened(1, 1, false);
    expect(v.fillAfter()).toBe(1);
    v.apply(streaming(2, 'who', 1));
    v.apply(msg(3));
    expect(v.lastSeq).toBe(3);
    expect(v.fillAfter()).toBe(1);
    v.apply(reply());
    expect(v.fillAfter()).toBe(3);
    expect(new ConversationView(CID).fillAfter()).toBeUndefined();
  });

  it('fillAfter pages on past the streaming messages a fill has read, and ignores those beyond a gap', () => {
    const v = opened(1, 1, false);
    for (const seq of [2, 5]) v.apply(streaming(seq));
    for (const seq of [3, 4, 6]) v.apply(msg(seq));
    v.apply(streaming(9));
    expect(v.lastSeq).toBe(6);
    expect(v.fillAfter()).toBe(1);
    expect(v.fillAfter(2)).toBe(4);
    expect(v.fillAfter(5)).toBe(6);
    // Beyond lastSeq a fill reads on from lastSeq anyway, and a `from` is never gone back on.
    expect(v.fillAfter(7)).toBe(7);
  });

  it('a re-read page replaces the held streaming message by its final version and reports it', () => {
    const v = opened(1, 1, false);
    v.apply(streaming(2, 'who', 1));
    v.apply(msg(3));
    const page = { messages: [reply(), msg(3)], hasMore: false };
    expect(v.applyPage(page, 'newer')).toEqual([reply()]);
    expect(v.get('m2')).toEqual(reply());
    expect(seqs(v)).toEqual([1, 2, 3]);
    expect(v.lastSeq).toBe(3);
    // The same page again changes nothing.
    expect(v.applyPage(page, 'newer')).toEqual([]);
  });

  it('a fuller stored snapshot replaces a stale streaming copy; a copy ahead of the snapshot is kept', () => {
    const v = opened(1, 1, false);
    v.apply(streaming(2, 'ab', 2));
    const fuller = streaming(2, 'abcde', 5);
    expect(v.applyPage({ messages: [fuller], hasMore: false }, 'newer')).toEqual([fuller]);
    expect(v.get('m2')?.content).toBe('abcde');
    // Deltas applied here beyond the snapshot stay: the stored deltaIndex is behind what the view applied.
    expect(v.applyDelta({ conversationId: CID, messageId: 'm2', index: 5, text: 'f' }).kind).toBe('applied');
    expect(v.applyPage({ messages: [fuller], hasMore: false }, 'newer')).toEqual([]);
    expect(v.get('m2')).toMatchObject({ content: 'abcdef', metadata: { deltaIndex: 6 } });
  });

  it('between streaming versions with equal delta counts, more text wins, then the later updatedAt', () => {
    const held = msg(2, { status: 'streaming', content: 'ab', metadata: null, updatedAt: at(10) });
    expect(supersedes({ ...held, content: 'abc' }, held)).toBe(true);
    expect(supersedes(held, { ...held, content: 'abc' })).toBe(false);
    expect(supersedes({ ...held, updatedAt: at(11) }, held)).toBe(true);
    expect(supersedes(held, held)).toBe(false);
  });
});

describe('tool calls of a streaming reply (tool:updated)', () => {
  const call = (n: number, over: Partial<ToolCallDto> = {}): ToolCallDto => ({
    id: `call-${n}`,
    name: 'add_task',
    status: 'running',
    startedAt: at(n),
    durationMs: null,
    error: null,
    ...over,
  });
  const done = (n: number) => call(n, { status: 'complete', durationMs: 12 });
  const update = (c: ToolCallDto, messageId = 'm2') => ({ conversationId: CID, messageId, call: c });
  const withReply = (reply: MessageDto) => {
    const v = opened(1, 1, false);
    v.apply(reply);
    return v;
  };

  it('records a call as it starts and as it ends, in order, on the held reply', () => {
    const v = withReply(streaming(2, 'Adding', 1));
    const started = v.applyTool(update(call(1)));
    expect(started.kind).toBe('applied');
    expect(toolCallsOf(v.get('m2')!)).toEqual([call(1)]);
    expect(v.applyTool(update(done(1))).kind).toBe('applied');
    expect(v.applyTool(update(call(2))).kind).toBe('applied');
    expect(toolCallsOf(v.get('m2')!)).toEqual([done(1), call(2)]);
    // The text and its delta count are untouched.
    expect(v.get('m2')).toMatchObject({ content: 'Adding', metadata: { deltaIndex: 1 } });
  });

  it('ignores a repeat, an earlier state of a call, an ended reply, and says when the reply is unknown', () => {
    const v = withReply(streaming(2, '', 0));
    v.applyTool(update(done(1)));
    expect(v.applyTool(update(done(1))).kind).toBe('duplicate');
    expect(v.applyTool(update(call(1))).kind).toBe('duplicate');
    expect(toolCallsOf(v.get('m2')!)).toEqual([done(1)]);
    expect(v.applyTool(update(call(1), 'm9')).kind).toBe('unknown');
    v.apply(msg(2, { role: 'assistant', status: 'complete', updatedAt: at(30), metadata: { toolCalls: [done(1)] } }));
    expect(v.applyTool(update(call(2))).kind).toBe('final');
  });

  it('a history snapshot saved before a tool event keeps the call this copy already holds, and adds what it lacks', () => {
    const v = withReply(streaming(2, 'a', 1));
    v.applyTool(update(call(1)));
    v.applyTool(update(done(1)));
    // Further along in text, but saved when call 1 was still running and without call 2's start.
    const snapshot = { ...streaming(2, 'ab', 2), metadata: { deltaIndex: 2, toolCalls: [call(1)] } };
    expect(v.apply(snapshot)).not.toBeNull();
    expect(v.get('m2')).toMatchObject({ content: 'ab', metadata: { deltaIndex: 2, toolCalls: [done(1)] } });
    // No further in text, but it knows of call 2: merged in, reported as a change.
    const behind = { ...streaming(2, 'ab', 2), metadata: { deltaIndex: 2, toolCalls: [done(1), call(2)] } };
    expect(v.apply(behind)).not.toBeNull();
    expect(toolCallsOf(v.get('m2')!)).toEqual([done(1), call(2)]);
    expect(v.apply(behind)).toBeNull();
  });

  it('the final version replaces the calls as they were streamed, whatever they said', () => {
    const v = withReply(streaming(2, 'a', 1));
    v.applyTool(update(call(1)));
    const final = msg(2, {
      role: 'assistant',
      status: 'stopped',
      metadata: { toolCalls: [call(1, { status: 'failed', error: 'STOPPED' })] },
    });
    v.apply(final);
    expect(toolCallsOf(v.get('m2')!)).toEqual([call(1, { status: 'failed', error: 'STOPPED' })]);
  });

  it('keeps the last 20 calls, as the server does', () => {
    const held = Array.from({ length: 20 }, (_, i) => done(i + 1));
    expect(mergeToolCalls(held, [call(21)])!.map((c) => c.id)).toEqual([...held.slice(1).map((c) => c.id), 'call-21']);
    expect(mergeToolCalls(held, [call(20)])).toBeNull();
  });
});
