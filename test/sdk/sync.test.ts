// Sync over a fake server (an in-memory history, pages of 2): gap fills page while hasMore and emit in seq order,
// reconnect catch-up, deltas of unknown messages, opens racing live events. No sockets.
import { describe, expect, it } from 'vitest';
import { Emitter } from '../../src/sdk/emitter.ts';
import { ChatError } from '../../src/sdk/errors.ts';
import { Sync, type Commands } from '../../src/sdk/sync.ts';
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

function setup(stored: MessageDto[], conversations: ConversationDto[] = []) {
  const fake = fakeServer(stored, conversations);
  const events = new Emitter<ChatClientEvents>();
  const emitted: number[] = [];
  const deleted: string[] = [];
  events.on('message', (m) => emitted.push(m.seq));
  events.on('conversationDeleted', (id) => deleted.push(id));
  return { ...fake, sync: new Sync(fake.server, events), events, emitted, deleted };
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
