// Sync over a fake server (an in-memory history, pages of 2): gap fills page while hasMore and emit in seq order,
// reconnect catch-up (re-reading what still streams), sync:required, quiet streams, deltas of unknown messages,
// opens racing live events. No sockets; fake timers where time matters.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Emitter } from '../../src/sdk/emitter.ts';
import { ChatError } from '../../src/sdk/errors.ts';
import { Sync, type Commands, type SyncOptions } from '../../src/sdk/sync.ts';
import type { ChatClientEvents } from '../../src/sdk/types.ts';
import type { CommandName, CommandPayloads, CommandResults, ConversationDto, MessageDto } from '../../src/shared/events.ts';

const CID = 'c1';
const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
const msg = (seq: number, over: Partial<MessageDto> = {}): MessageDto => ({
  id: `m${seq}`,
  conversationId: CID,
  seq,
  role: 'user',
  status: 'complete',
  content: `t${seq}`,
  metadata: null,
  clientMessageId: null,
  createdAt: at(seq),
  updatedAt: at(seq),
  ...over,
});

function fakeServer(stored: MessageDto[], conversations: ConversationDto[] = []) {
  const calls: string[] = [];
  const PAGE = 2;
  const conv = (): ConversationDto => ({ id: CID, title: null, lastSeq: stored.length, createdAt: at(0), updatedAt: at(stored.length) });
  const handle = async (event: CommandName, payload: any): Promise<any> => {
    calls.push(
      `${event}${payload.after !== undefined ? ` after ${payload.after}` : ''}${payload.before !== undefined ? ` before ${payload.before}` : ''}`,
    );
    await Promise.resolve();
    if (event === 'conversation:list') return { conversations, nextCursor: null };
    if (event !== 'history:get') throw new Error(`unexpected ${event}`);
    if (payload.conversationId !== CID) throw new ChatError('NOT_FOUND', 'conversation not found');
    const all = [...stored].sort((a, b) => a.seq - b.seq);
    if (payload.after !== undefined) {
      const newer = all.filter((m) => m.seq > payload.after);
      return { conversation: conv(), messages: newer.slice(0, PAGE), hasMore: newer.length > PAGE };
    }
    const older = payload.before !== undefined ? all.filter((m) => m.seq < payload.before) : all;
    return { conversation: conv(), messages: older.slice(-PAGE), hasMore: older.length > PAGE };
  };
  const server: Commands = {
    command: <K extends CommandName>(e: K, p: CommandPayloads[K]) => handle(e, p) as Promise<CommandResults[K]>,
    retrying: <K extends CommandName>(e: K, p: CommandPayloads[K]) => handle(e, p) as Promise<CommandResults[K]>,
  };
  return { server, calls, stored };
}

function setup(stored: MessageDto[], conversations: ConversationDto[] = [], options: SyncOptions = {}) {
  const fake = fakeServer(stored, conversations);
  const events = new Emitter<ChatClientEvents>();
  const emitted: number[] = [];
  const deleted: string[] = [];
  events.on('message', (m) => emitted.push(m.seq));
  events.on('conversationDeleted', (id) => deleted.push(id));
  return { ...fake, sync: new Sync(fake.server, events, options), events, emitted, deleted };
}

describe('Sync', () => {
  it('a seq gap is filled with history:get after lastSeq, paged while hasMore, emitted in seq order', async () => {
    const { sync, calls, stored, emitted } = setup([msg(1), msg(2)]);
    await sync.open(CID);
    stored.push(...[3, 4, 5, 6, 7].map((s) => msg(s)));
    sync.apply(['message:created', { message: msg(7) }]);
    await sync.synced();
    // The page ending at 6 said hasMore: 7 is known, but more may follow it, so one more page is asked for.
    expect(calls).toEqual(['history:get', 'history:get after 2', 'history:get after 4', 'history:get after 7']);
    expect(emitted).toEqual([7, 3, 4, 5, 6]);
    expect(
      sync
        .view(CID)!
        .messages()
        .map((m) => m.seq),
    ).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('events arriving while open() waits for its page are kept and deduplicated against it', async () => {
    const { sync, emitted } = setup([msg(1), msg(2)]);
    const opening = sync.open(CID);
    sync.apply(['message:created', { message: msg(2) }]);
    sync.apply(['message:created', { message: msg(3) }]);
    expect((await opening).map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(emitted).toEqual([2, 3]);
  });

  it('reconnect catch-up fetches after lastSeq for every followed conversation and reconciles the list', async () => {
    const other: ConversationDto = { id: 'gone', title: null, lastSeq: 0, createdAt: at(0), updatedAt: at(0) };
    const { sync, calls, stored, deleted } = setup([msg(1), msg(2)]);
    sync.conversation(other);
    await sync.open(CID);
    stored.push(msg(3), msg(4), msg(5));
    sync.catchUp();
    await sync.synced();
    expect(calls).toEqual(['history:get', 'history:get after 2', 'conversation:list', 'history:get after 4']);
    expect(sync.view(CID)!.lastSeq).toBe(5);
    expect(deleted).toEqual(['gone']);
  });

  it('a delta for an unknown message fetches once, then applies the next deltas', async () => {
    const { sync, calls, stored, events } = setup([msg(1)]);
    await sync.open(CID);
    stored.push(msg(2, { role: 'assistant', status: 'streaming', content: 'ab', metadata: { deltaIndex: 2 } }));
    const texts: string[] = [];
    events.on('delta', (_d, m) => texts.push(m.content));
    sync.apply(['message:delta', { conversationId: CID, messageId: 'm2', index: 1, text: 'b' }]);
    sync.apply(['message:delta', { conversationId: CID, messageId: 'm2', index: 1, text: 'b' }]);
    await sync.synced();
    sync.apply(['message:delta', { conversationId: CID, messageId: 'm2', index: 2, text: 'c' }]);
    expect(calls.filter((c) => c.startsWith('history:get after'))).toEqual(['history:get after 1']);
    expect(texts).toEqual(['abc']);
  });

  it('a send is followed from its own message:created when that comes before the ack', () => {
    const { sync, emitted } = setup([]);
    sync.sending('cm-1', true);
    sync.apply(['message:created', { message: msg(5, { clientMessageId: 'cm-1' }) }]);
    sync.apply(['message:created', { message: msg(6, { role: 'assistant', status: 'streaming', content: '' }) }]);
    sync.message(msg(5, { clientMessageId: 'cm-1' }), true);
    sync.sending('cm-1', false);
    expect(emitted).toEqual([5, 6]);
    expect(sync.view(CID)!.firstSeq).toBe(5);
    expect(sync.view(CID)!.hasOlder).toBe(true);
  });

  it('loadOlder pages back with before', async () => {
    const { sync, calls } = setup([1, 2, 3, 4, 5].map((s) => msg(s)));
    await sync.open(CID);
    expect((await sync.loadOlder(CID)).map((m) => m.seq)).toEqual([2, 3]);
    expect((await sync.loadOlder(CID)).map((m) => m.seq)).toEqual([1]);
    expect(await sync.loadOlder(CID)).toEqual([]);
    expect(calls).toEqual(['history:get', 'history:get before 4', 'history:get before 2']);
  });

  it('opening an unknown conversation rejects NOT_FOUND without reporting a deletion', async () => {
    const { sync, deleted } = setup([]);
    await expect(sync.open('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(sync.view('nope')).toBeUndefined();
    expect(deleted).toEqual([]);
  });
});

const reply = (seq: number, status: MessageDto['status'], content: string, deltaIndex: number, updated = seq): MessageDto =>
  msg(seq, { role: 'assistant', status, content, metadata: { deltaIndex }, updatedAt: at(updated) });
/** Replaces the stored version of a message, as the server's own writes do without telling this client. */
const store = (stored: MessageDto[], m: MessageDto) =>
  stored.splice(
    stored.findIndex((s) => s.seq === m.seq),
    1,
    m,
  );
const rereads = (calls: string[]) => calls.filter((c) => c.startsWith('history:get after'));

describe('Sync: messages still streaming', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('the reconnect catch-up reads again from below a reply held streaming, and takes its final version', async () => {
    const { sync, calls, stored, emitted } = setup([msg(1), reply(2, 'streaming', 'Ec', 1)], [], { staleStreamMs: Infinity });
    await sync.open(CID);
    // The end of the reply, and a message after it, were broadcast while this client was away.
    store(stored, reply(2, 'complete', 'Echo: hi', 3, 9));
    stored.push(msg(3));
    sync.catchUp();
    await sync.synced();
    expect(rereads(calls)).toEqual(['history:get after 1']);
    expect(sync.view(CID)!.messages()).toEqual(stored);
    expect(emitted).toEqual([2, 3]);
    // Nothing streams any more: the next catch-up asks from lastSeq again.
    sync.catchUp();
    await sync.synced();
    expect(rereads(calls)).toEqual(['history:get after 1', 'history:get after 3']);
  });

  it('a fill pages on from what it read, so a reply still streaming is read once per fill', async () => {
    const { sync, calls, stored } = setup([msg(1), reply(2, 'streaming', 'E', 1), msg(3)], [], { staleStreamMs: Infinity });
    await sync.open(CID);
    expect(sync.view(CID)!.firstSeq).toBe(2);
    stored.push(msg(4), msg(5), msg(6));
    sync.catchUp();
    await sync.synced();
    expect(rereads(calls)).toEqual(['history:get after 1', 'history:get after 3', 'history:get after 5']);
    expect(
      sync
        .view(CID)!
        .messages()
        .map((m) => m.seq),
    ).toEqual([2, 3, 4, 5, 6]);
  });

  it('sync:required catches up once after a random pause of up to spreadMs, however many arrive meanwhile', async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const listed: ConversationDto = { id: CID, title: null, lastSeq: 2, createdAt: at(0), updatedAt: at(2) };
    const { sync, calls, stored } = setup([msg(1), reply(2, 'streaming', 'Ec', 1)], [listed], { staleStreamMs: Infinity });
    await sync.open(CID);
    store(stored, reply(2, 'complete', 'Echo: hi', 3, 9));
    for (let i = 0; i < 3; i++) sync.apply(['sync:required', { reason: 'fanout_interrupted', spreadMs: 1000 }]);
    const synced = sync.synced();
    await vi.advanceTimersByTimeAsync(499);
    expect(calls).toEqual(['history:get']);
    await vi.advanceTimersByTimeAsync(1);
    await synced;
    expect(calls).toEqual(['history:get', 'history:get after 1', 'conversation:list']);
    expect(sync.view(CID)!.messages()).toEqual(stored);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a catch-up meanwhile (a reconnect) takes the place of a pending sync:required; close() drops one', async () => {
    vi.useFakeTimers();
    const { sync, calls } = setup([msg(1)]);
    await sync.open(CID);
    sync.apply(['sync:required', { reason: 'fanout_interrupted', spreadMs: 5000 }]);
    sync.catchUp();
    await sync.synced();
    sync.apply(['sync:required', { reason: 'fanout_interrupted', spreadMs: 5000 }]);
    sync.close();
    await sync.synced();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toEqual(['history:get', 'history:get after 1', 'conversation:list']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a streaming reply unheard of for staleStreamMs is read again, every bound while it stays quiet, by one timer', async () => {
    vi.useFakeTimers();
    // The latest page (of 2) holds two replies streaming.
    const { sync, calls, stored } = setup([msg(1), reply(2, 'streaming', 'Ec', 1), reply(3, 'streaming', '', 0)], [], {
      staleStreamMs: 1000,
    });
    await sync.open(CID);
    expect(vi.getTimerCount()).toBe(1);
    // Deltas keep a reply alive; each conversation is read once however many of its replies went quiet.
    await vi.advanceTimersByTimeAsync(600);
    sync.apply(['message:delta', { conversationId: CID, messageId: 'm3', index: 0, text: 'x' }]);
    await vi.advanceTimersByTimeAsync(399);
    expect(rereads(calls)).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(rereads(calls)).toEqual(['history:get after 1']);
    // Still streaming and quiet in storage: read again a bound later, with its fuller saved text.
    store(stored, reply(2, 'streaming', 'Echo', 2, 5));
    await vi.advanceTimersByTimeAsync(1000);
    expect(rereads(calls)).toEqual(['history:get after 1', 'history:get after 1']);
    expect(sync.view(CID)!.get('m2')).toEqual(stored[1]);
    // Both end unseen: the next reads bring the final versions, and then no timer is left.
    store(stored, reply(2, 'complete', 'Echo: hi', 3, 9));
    store(stored, reply(3, 'stopped', 'x', 1, 9));
    await vi.advanceTimersByTimeAsync(1000);
    await sync.synced();
    expect(sync.view(CID)!.messages()).toEqual(stored.slice(1));
    expect(vi.getTimerCount()).toBe(0);
  });

  it('no timer while nothing streams; none offline either, where the reconnect catch-up will read', async () => {
    vi.useFakeTimers();
    let online = false;
    const { sync, calls } = setup([msg(1)], [], { staleStreamMs: 1000, online: () => online });
    await sync.open(CID);
    expect(vi.getTimerCount()).toBe(0);
    sync.apply(['message:created', { message: reply(2, 'streaming', '', 0) }]);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(3000);
    expect(rereads(calls)).toEqual([]);
    online = true;
    await vi.advanceTimersByTimeAsync(1000);
    expect(rereads(calls)).toEqual(['history:get after 1']);
    sync.forget(CID);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('staleStreamMs: Infinity sets no timer at all; zero or less is refused', async () => {
    vi.useFakeTimers();
    const { sync, server } = setup([msg(1), reply(2, 'streaming', '', 0)], [], { staleStreamMs: Infinity });
    await sync.open(CID);
    expect(vi.getTimerCount()).toBe(0);
    for (const staleStreamMs of [0, -1, Number.NaN]) {
      expect(() => new Sync(server, new Emitter<ChatClientEvents>(), { staleStreamMs })).toThrow(TypeError);
    }
  });
});
