/**
 * The client's local view of one conversation: pure bookkeeping (no sockets, no timers), so the rules that keep
 * every tab consistent — dedupe by `seq`, ordering, delta application, gap detection — are unit-testable.
 *
 * The view holds a window of the conversation: `firstSeq` is the oldest seq it was loaded from (older pages extend
 * it), `lastSeq` the highest seq such that every message in `firstSeq..lastSeq` is known. A stored message above
 * `lastSeq + 1` means something was missed in between (a dropped broadcast): `gap()` says what to fetch.
 * A message still streaming may also have moved on unseen (its deltas and final `message:updated` lost):
 * `fillAfter()` reaches back to re-read those too.
 */
import type { MessageDelta, MessageDto, Status, ToolCallDto, ToolUpdate } from '../shared/events.ts';

/** What `applyDelta` did with a delta. */
export type DeltaOutcome =
  /** Appended: `message` is the message with the new text. */
  | { kind: 'applied'; message: MessageDto }
  /** Already in the text (an index below the count it holds): ignored. */
  | { kind: 'duplicate' }
  /** Earlier deltas were missed: the text is kept as is until `message:updated` brings the whole text. */
  | { kind: 'ahead' }
  /** The message is no longer streaming (stopped, complete, failed): late deltas are ignored. */
  | { kind: 'final' }
  /** The message is not in the view (its `message:created` was missed): fetch what follows `lastSeq`. */
  | { kind: 'unknown' };

/** What `applyTool` did with a `tool:updated`. */
export type ToolOutcome =
  /** Recorded: `message` is the reply with the call in its `metadata.toolCalls`. */
  | { kind: 'applied'; message: MessageDto }
  /** The reply already held the call in that state, or a later one: ignored. */
  | { kind: 'duplicate' }
  /** The reply has ended: its stored version holds every call as it ended. */
  | { kind: 'final' }
  /** The reply is not in the view: fetch what follows `lastSeq`. */
  | { kind: 'unknown' };

/** As many calls as the server keeps in `metadata.toolCalls`. */
const TOOL_CALLS_KEPT = 20;

/** The tool calls a reply's metadata holds (none for a reply that called no tool, or a user's message). */
export const toolCallsOf = (m: MessageDto): ToolCallDto[] => {
  const calls = m.metadata?.toolCalls;
  return Array.isArray(calls) ? calls.filter((c): c is ToolCallDto => typeof c?.id === 'string') : [];
};

/** A call that has ended is later in its life than one running; two versions in the same state are the same. */
const callStage = (c: ToolCallDto) => (c.status === 'running' ? 0 : 1);

/**
 * `held` with `incoming` merged in, by call id: a call not held is added (in arrival order, the last
 * TOOL_CALLS_KEPT kept), a held call is replaced only by a later state of it. Null when nothing changes.
 */
export function mergeToolCalls(held: ToolCallDto[], incoming: ToolCallDto[]): ToolCallDto[] | null {
  let merged = held;
  for (const call of incoming) {
    const at = merged.findIndex((c) => c.id === call.id);
    if (at < 0) merged = [...merged, call].slice(-TOOL_CALLS_KEPT);
    else if (callStage(call) > callStage(merged[at]!)) merged = merged.map((c, i) => (i === at ? call : c));
  }
  return merged === held ? null : merged;
}

/** `message` holding the calls of `calls` it lacks (or holds at an earlier state); null when it already has them all. */
function withToolCalls(message: MessageDto, calls: ToolCallDto[]): MessageDto | null {
  const merged = mergeToolCalls(toolCallsOf(message), calls);
  return merged && { ...message, metadata: { ...message.metadata, toolCalls: merged } };
}

/** Which page of `history:get` is being applied. */
export type PageKind = 'latest' | 'older' | 'newer';

const FINAL: ReadonlySet<Status> = new Set(['complete', 'stopped', 'failed']);

/**
 * True once a message can no longer change (its status is `complete`, `stopped` or `failed`): no more deltas or
 * updates will come for it, so a UI can announce it or stop showing it as in progress.
 *
 * @example
 * import { isFinal } from './sdk/index.ts';
 * chat.on('message', (m) => {
 *   if (m.role === 'assistant' && isFinal(m)) speak(m.content);
 * });
 */
export const isFinal = (m: MessageDto): boolean => FINAL.has(m.status);

/** How many deltas a streaming message's text holds: the next delta to apply has this index. */
export const deltaCount = (m: MessageDto): number => {
  const n = m.metadata?.deltaIndex;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : 0;
};

/**
 * Whether `incoming` should replace `stored` (two versions of the same message): whether it is later in the
 * message's life. A final status beats streaming; between two final versions the later `updatedAt` wins; between
 * two streaming versions the one holding more deltas wins, then the one with more text, then the later `updatedAt`.
 * The local copy counts the deltas it applied, so it is often ahead of the last persisted snapshot, and a re-read
 * then leaves it as it is. Ties keep the stored version, so a duplicate is never reported as a change.
 */
export function supersedes(incoming: MessageDto, stored: MessageDto): boolean {
  const inFinal = isFinal(incoming);
  const storedFinal = isFinal(stored);
  if (inFinal !== storedFinal) return inFinal;
  const newer = Date.parse(incoming.updatedAt) - Date.parse(stored.updatedAt);
  if (inFinal) return newer > 0;
  // A streaming text only grows, so with equal delta counts the longer one is the fuller snapshot.
  const further = deltaCount(incoming) - deltaCount(stored) || incoming.content.length - stored.content.length;
  return further > 0 || (further === 0 && newer > 0);
}

/**
 * One conversation's window of messages, as the client knows it.
 *
 * @example
 * const view = new ConversationView(conversationId);
 * view.applyPage(await chat.history({ conversationId }), 'latest');
 * view.apply(incoming.message);
 * const after = view.gap(); // fetch history:get { after } when not null
 */
export class ConversationView {
  readonly conversationId: string;
  private readonly bySeq = new Map<number, MessageDto>();
  private readonly seqById = new Map<string, number>();
  /** Undefined until a page (or a seed message) fixes where the window starts. */
  private start: number | undefined;
  private contiguousTo = 0;
  private maxSeq = 0;
  /** Seqs of the held messages not yet final: the ones a fill must read again. */
  private readonly unsettled = new Set<number>();
  private sorted: MessageDto[] | undefined;
  /** Whether messages older than `firstSeq` exist on the server. */
  hasOlder = false;

  constructor(conversationId: string) {
    this.conversationId = conversationId;
  }

  /** True once the window is fixed (the first page arrived or a seed message was applied). */
  get loaded(): boolean {
    return this.start !== undefined;
  }

  /** The oldest seq of the window, or undefined while loading. */
  get firstSeq(): number | undefined {
    return this.start;
  }

  /** Every seq in `firstSeq..lastSeq` is known; undefined while loading. */
  get lastSeq(): number | undefined {
    return this.start === undefined ? undefined : this.contiguousTo;
  }

  /** The messages, ascending by seq, one per seq. */
  messages(): MessageDto[] {
    this.sorted ??= [...this.bySeq.values()].sort((a, b) => a.seq - b.seq);
    return this.sorted;
  }

  get(messageId: string): MessageDto | undefined {
    const seq = this.seqById.get(messageId);
    return seq === undefined ? undefined : this.bySeq.get(seq);
  }

  /**
   * The `after` to fetch when messages are missing above `lastSeq` (a stored message beyond `lastSeq + 1`),
   * else null. Also null while loading: the first page decides where the window starts.
   */
  gap(): number | null {
    if (this.start === undefined) return null;
    return this.maxSeq > this.contiguousTo ? this.contiguousTo : null;
  }

  /**
   * The `after` of a fill's next `history:get`: `lastSeq`, or lower, so that the page brings again the held messages
   * still streaming at or below `lastSeq` — their later versions (more text, the final status) may have been missed,
   * and their seq already counts in `lastSeq`. `from`: seqs up to it were already read in this fill (a fill pages
   * on from there). Undefined while loading.
   */
  fillAfter(from = 0): number | undefined {
    if (this.start === undefined) return undefined;
    let after = this.contiguousTo;
    for (const seq of this.unsettled) if (seq > from && seq <= after) after = seq - 1;
    return Math.max(after, from);
  }

  /**
   * Starts the window at `message` when the view was not loaded from a page (a conversation followed from a send).
   * Messages older than it are then known to exist only if its seq is above 1.
   */
  seed(message: MessageDto): MessageDto | null {
    if (this.start === undefined) {
      this.start = message.seq;
      this.contiguousTo = message.seq - 1;
      this.hasOlder = message.seq > 1;
    }
    return this.apply(message);
  }

  /**
   * Applies a `history:get` page; returns the messages it added or replaced, ascending by seq.
   * `latest` (neither before nor after) fixes the window when loading; `older` (before) extends it downwards;
   * `newer` (after) fills what follows `lastSeq`.
   */
  applyPage(page: { messages: MessageDto[]; hasMore: boolean; conversation?: { lastSeq: number } }, kind: PageKind): MessageDto[] {
    const first = page.messages.reduce((min, m) => Math.min(min, m.seq), Infinity);
    if (kind === 'latest') {
      const pageStart = Number.isFinite(first) ? first : (page.conversation?.lastSeq ?? 0) + 1;
      if (this.start === undefined || pageStart < this.start) {
        this.start = pageStart;
        this.hasOlder = page.hasMore;
      }
    } else if (kind === 'older' && this.start !== undefined) {
      if (first < this.start) this.start = first;
      this.hasOlder = page.hasMore;
    }
    const changed: MessageDto[] = [];
    for (const m of page.messages) {
      if (m.conversationId !== this.conversationId) continue;
      const applied = this.apply(m);
      if (applied) changed.push(applied);
    }
    if (kind !== 'newer') this.recomputeContiguous();
    return changed.sort((a, b) => a.seq - b.seq);
  }

  /**
   * Applies a `message:created` or `message:updated` (or an ack's message): stores it if new, replaces the stored
   * version if it supersedes it. Returns the stored message when something changed, null for a duplicate.
   */
  apply(message: MessageDto): MessageDto | null {
    if (message.conversationId !== this.conversationId) return null;
    const stored = this.bySeq.get(message.seq) ?? this.get(message.id);
    if (stored) {
      if (stored.id !== message.id) return null;
      const streaming = !isFinal(message) && !isFinal(stored);
      if (!supersedes(message, stored)) {
        // A snapshot no further along in text may still know of a tool call this copy missed the event of.
        const merged = streaming ? withToolCalls(stored, toolCallsOf(message)) : null;
        if (merged) this.store(stored.seq, merged);
        return merged;
      }
      // And a snapshot further along in text may have been saved before a tool event this copy applied.
      const next = (streaming && withToolCalls(message, toolCallsOf(stored))) || message;
      this.store(stored.seq, next);
      return next;
    }
    // Older than the window (a view followed from a send): loadOlder brings those, in pages without holes.
    if (this.start !== undefined && message.seq < this.start) return null;
    this.store(message.seq, message);
    this.seqById.set(message.id, message.seq);
    this.maxSeq = Math.max(this.maxSeq, message.seq);
    this.advance();
    return message;
  }

  /**
   * Applies a `message:delta`: only a streaming message takes it, and only when `index` equals the number of deltas
   * its text already holds (`metadata.deltaIndex`, kept up to date here on the local copy).
   */
  applyDelta(delta: MessageDelta): DeltaOutcome {
    if (delta.conversationId !== this.conversationId) return { kind: 'unknown' };
    const stored = this.get(delta.messageId);
    if (!stored) return { kind: 'unknown' };
    if (isFinal(stored)) return { kind: 'final' };
    const held = deltaCount(stored);
    if (delta.index < held) return { kind: 'duplicate' };
    if (delta.index > held) return { kind: 'ahead' };
    const message: MessageDto = {
      ...stored,
      content: stored.content + delta.text,
      metadata: { ...stored.metadata, deltaIndex: held + 1 },
    };
    this.bySeq.set(stored.seq, message);
    this.sorted = undefined;
    return { kind: 'applied', message };
  }

  /**
   * Applies a `tool:updated`: a streaming reply records the call in its `metadata.toolCalls` (a new call, or a later
   * state of one it holds). An ended reply ignores it: its stored version has the calls as they ended.
   */
  applyTool(update: ToolUpdate): ToolOutcome {
    if (update.conversationId !== this.conversationId) return { kind: 'unknown' };
    const stored = this.get(update.messageId);
    if (!stored) return { kind: 'unknown' };
    if (isFinal(stored)) return { kind: 'final' };
    const message = withToolCalls(stored, [update.call]);
    if (!message) return { kind: 'duplicate' };
    this.store(stored.seq, message);
    return { kind: 'applied', message };
  }

  private store(seq: number, message: MessageDto): void {
    this.bySeq.set(seq, message);
    if (isFinal(message)) this.unsettled.delete(seq);
    else this.unsettled.add(seq);
    this.sorted = undefined;
  }

  private advance(): void {
    if (this.start === undefined) return;
    while (this.bySeq.has(this.contiguousTo + 1)) this.contiguousTo++;
  }

  private recomputeContiguous(): void {
    if (this.start === undefined) return;
    this.contiguousTo = this.start - 1;
    this.advance();
  }
}
