/**
 * Keeps the local views consistent with the server: applies notifications and acks, follows conversations, and
 * repairs what was lost (seq gaps, deltas of unknown messages, everything missed while disconnected or while the
 * server's fan-out was interrupted, streaming replies that went quiet) with `history:get { after }`. The rules
 * themselves live in conversation-view.ts, conversation-list.ts and quiet-streams.ts.
 */
import type {
  CommandName,
  CommandPayloads,
  CommandResults,
  ConversationDto,
  MessageDelta,
  MessageDto,
  ToolUpdate,
} from '../shared/events.ts';
import { ConversationList } from './conversation-list.ts';
import { ConversationView } from './conversation-view.ts';
import type { Emitter } from './emitter.ts';
import { ChatError } from './errors.ts';
import { QuietStreams } from './quiet-streams.ts';
import type { ChatClientEvents, IncomingNotification } from './types.ts';

/** `history:get` page size for gap fills and catch-up (the contract's maximum). */
const FILL_LIMIT = 200;
const DEFAULT_STALE_STREAM_MS = 5000;
/**
 * A `sync:required` pause is never longer than this, whatever `spreadMs` says: a catch-up later than that no longer
 * repairs anything in time, and timers beyond 2^31 ms fire at once.
 */
const MAX_SPREAD_MS = 60_000;

/** How sync reaches the server: a command, and the same retried while its outcome is unknown. */
export interface Commands {
  command<K extends CommandName>(event: K, payload: CommandPayloads[K]): Promise<CommandResults[K]>;
  retrying<K extends CommandName>(event: K, payload: CommandPayloads[K]): Promise<CommandResults[K]>;
}

export interface SyncOptions {
  /** See `ChatClientOptions.staleStreamMs`. */
  staleStreamMs?: number;
  /** Whether commands can reach the server now (default: always). */
  online?: () => boolean;
}

export class Sync {
  readonly list = new ConversationList();
  private readonly views = new Map<string, ConversationView>();
  /** Conversations whose latest page was loaded by `open`. */
  private readonly opened = new Set<string>();
  private readonly opening = new Map<string, Promise<readonly MessageDto[]>>();
  private readonly fills = new Map<string, Promise<void>>();
  private readonly refill = new Set<string>();
  /** Messages whose deltas arrived before them: fetched once each, not once per delta. */
  private readonly missed = new Set<string>();
  /** clientMessageIds of sends awaiting their ack: their conversation is followed from their `message:created`. */
  private readonly pendingSends = new Set<string>();
  private readonly background = new Set<Promise<void>>();
  private readonly quiet: QuietStreams;
  /** The one timer of the quiet-stream re-reads, set only while a followed message streams. */
  private quietTimer?: ReturnType<typeof setTimeout>;
  /** The pause before the catch-up a `sync:required` asked for. */
  private resync?: { timer: ReturnType<typeof setTimeout>; settle: () => void };
  private stopped = false;
  private readonly server: Commands;
  private readonly events: Emitter<ChatClientEvents>;
  private readonly online: () => boolean;

  constructor(server: Commands, events: Emitter<ChatClientEvents>, options: SyncOptions = {}) {
    this.server = server;
    this.events = events;
    this.online = options.online ?? (() => true);
    this.quiet = new QuietStreams(options.staleStreamMs ?? DEFAULT_STALE_STREAM_MS);
  }

  view(conversationId: string): ConversationView | undefined {
    return this.views.get(conversationId);
  }

  /** Applies a server notification (`auth:expired` is the connection's, not ours). */
  apply([event, payload]: IncomingNotification): void {
    switch (event) {
      case 'conversation:created':
      case 'conversation:updated':
        return this.conversation(payload.conversation);
      case 'conversation:deleted':
        return this.deleted(payload.conversationId);
      case 'message:created':
      case 'message:updated':
        return this.message(payload.message, false);
      case 'message:delta':
        return this.delta(payload);
      case 'tool:updated':
        return this.tool(payload);
      case 'sync:required':
        return this.required(payload.spreadMs);
    }
  }

  /** A send is in flight: follow its conversation from its `message:created`, should that come before the ack. */
  sending(clientMessageId: string, inFlight: boolean): void {
    if (inFlight) this.pendingSends.add(clientMessageId);
    else this.pendingSends.delete(clientMessageId);
  }

  /** Applies a message from a notification or an ack; `follow` starts following its conversation if needed. */
  message(message: MessageDto, follow: boolean): void {
    const bumped = this.list.bump(message);
    if (bumped) this.events.emit('conversation', bumped);
    let view = this.views.get(message.conversationId);
    const ours = message.clientMessageId !== null && this.pendingSends.has(message.clientMessageId);
    if (!view) {
      if (!follow && !ours) return;
      view = new ConversationView(message.conversationId);
      this.views.set(message.conversationId, view);
    }
    const changed = view.loaded || this.opening.has(view.conversationId) ? view.apply(message) : view.seed(message);
    if (changed) this.events.emit('message', changed);
    this.heard(view.get(message.id));
    this.repairIfGap(view);
  }

  conversation(conversation: ConversationDto): void {
    const changed = this.list.upsert(conversation);
    if (changed) this.events.emit('conversation', changed);
  }

  deleted(conversationId: string): void {
    const first = this.list.remove(conversationId);
    const followed = this.views.has(conversationId);
    this.forget(conversationId);
    if (first || followed) this.events.emit('conversationDeleted', conversationId);
  }

  forget(conversationId: string): void {
    this.views.delete(conversationId);
    this.opened.delete(conversationId);
    this.quiet.forget(conversationId);
    this.scheduleQuiet();
  }

  open(conversationId: string): Promise<readonly MessageDto[]> {
    const inFlight = this.opening.get(conversationId);
    if (inFlight) return inFlight;
    const existing = this.views.get(conversationId);
    if (existing && this.opened.has(conversationId)) return Promise.resolve(existing.messages());
    // The view exists before the request, so notifications arriving meanwhile are kept, not dropped.
    const view = existing ?? new ConversationView(conversationId);
    this.views.set(conversationId, view);
    const loading = (async () => {
      try {
        const page = await this.server.retrying('history:get', { conversationId });
        this.conversation(page.conversation);
        for (const m of view.applyPage(page, 'latest')) this.heard(m);
        if (this.views.get(conversationId) === view) {
          this.opened.add(conversationId);
          this.repairIfGap(view);
        }
        return view.messages();
      } catch (err) {
        if (!existing && this.views.get(conversationId) === view) this.views.delete(conversationId);
        // Known here and now missing: deleted while we were not looking (an unknown id is just an error).
        const known = existing !== undefined || this.list.get(conversationId) !== undefined;
        if (known && err instanceof ChatError && err.code === 'NOT_FOUND') this.deleted(conversationId);
        throw err;
      } finally {
        this.opening.delete(conversationId);
      }
    })();
    this.opening.set(conversationId, loading);
    return loading;
  }

  async loadOlder(conversationId: string, limit?: number): Promise<readonly MessageDto[]> {
    await this.opening.get(conversationId);
    const view = this.views.get(conversationId);
    if (!view || !this.opened.has(conversationId)) return this.open(conversationId);
    if (!view.hasOlder || view.firstSeq === undefined) return [];
    const page = await this.server.command('history:get', { conversationId, before: view.firstSeq, limit });
    const older = view.applyPage(page, 'older');
    for (const m of older) this.heard(m);
    return older;
  }

  /**
   * After a reconnect or a `sync:required`: what every followed conversation missed (including the later versions
   * of the messages it holds still streaming), and the refreshed conversation list.
   */
  catchUp(): void {
    // This catch-up reads everything the pending one would have.
    this.cancelResync();
    for (const view of this.views.values()) if (view.loaded) this.track(this.fill(view.conversationId));
    this.track(this.refreshList());
  }

  async synced(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  /** The client was closed: no more timers. Work in flight ends by itself (its commands fail `DISCONNECTED`). */
  close(): void {
    this.stopped = true;
    this.cancelResync();
    clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
  }

  private delta(delta: MessageDelta): void {
    const view = this.views.get(delta.conversationId);
    if (!view) return;
    const outcome = view.applyDelta(delta);
    // Even a duplicate or an early delta says the reply is alive: only silence makes it quiet.
    if (outcome.kind !== 'unknown') this.heard(view.get(delta.messageId));
    if (outcome.kind === 'applied') return this.events.emit('delta', delta, outcome.message);
    // 'ahead': earlier deltas were lost; the text stays as is until message:updated brings all of it.
    if (outcome.kind === 'unknown' && view.loaded && !this.missed.has(delta.messageId)) {
      this.missed.add(delta.messageId);
      this.track(this.fill(view.conversationId));
    }
  }

  private tool(update: ToolUpdate): void {
    const view = this.views.get(update.conversationId);
    if (!view) return;
    const outcome = view.applyTool(update);
    if (outcome.kind !== 'unknown') this.heard(view.get(update.messageId));
    if (outcome.kind === 'applied') return this.events.emit('tool', update, outcome.message);
    // As for a delta: the reply's message:created was missed.
    if (outcome.kind === 'unknown' && view.loaded && !this.missed.has(update.messageId)) {
      this.missed.add(update.messageId);
      this.track(this.fill(view.conversationId));
    }
  }

  /**
   * `sync:required`: events for this tab may have been lost. The catch-up waits a random pause of up to
   * `spreadMs`, so that every tab of a node does not ask at once; those arriving during the pause join it.
   */
  private required(spreadMs: number): void {
    if (this.resync || this.stopped) return;
    const spread = Number.isFinite(spreadMs) ? Math.min(Math.max(spreadMs, 0), MAX_SPREAD_MS) : 0;
    // Tracked, so that synced() also waits for the pause and the catch-up it starts.
    this.track(
      new Promise<void>((settle) => {
        const timer = setTimeout(() => {
          this.resync = undefined;
          // Offline, the catch-up after the reconnect does the same.
          if (this.online()) this.catchUp();
          settle();
        }, Math.random() * spread);
        this.resync = { timer, settle };
      }),
    );
  }

  private cancelResync(): void {
    if (!this.resync) return;
    clearTimeout(this.resync.timer);
    this.resync.settle();
    this.resync = undefined;
  }

  /** A held message was heard of: its quiet-stream clock restarts while it streams, and stops once it is final. */
  private heard(message: MessageDto | undefined): void {
    if (!message) return;
    this.quiet.note(message, Date.now());
    this.scheduleQuiet();
  }

  /** One timer for the whole client, due when the first streaming message goes quiet; none while nothing streams. */
  private scheduleQuiet(): void {
    const next = this.stopped ? undefined : this.quiet.nextDue();
    if (next === undefined) {
      clearTimeout(this.quietTimer);
      this.quietTimer = undefined;
    } else if (this.quietTimer === undefined) {
      // Clocks only move forward, so the timer fires early at worst, and is then set again for what is due.
      this.quietTimer = setTimeout(() => this.rereadQuiet(), Math.max(0, next - Date.now()));
    }
  }

  private rereadQuiet(): void {
    this.quietTimer = undefined;
    const due = this.quiet.due(Date.now());
    // Offline, a read would only time out; the catch-up after the reconnect reads them again anyway.
    if (this.online()) for (const conversationId of due) this.track(this.fill(conversationId));
    this.scheduleQuiet();
  }

  private repairIfGap(view: ConversationView): void {
    if (view.gap() !== null) this.track(this.fill(view.conversationId));
  }

  private async refreshList(): Promise<void> {
    const before = this.list.snapshot();
    const page = await this.server.command('conversation:list', {});
    const { changed, removed } = this.list.reconcile(before, page);
    for (const c of changed) this.events.emit('conversation', c);
    for (const id of removed) {
      this.forget(id);
      this.events.emit('conversationDeleted', id);
    }
  }

  /**
   * Fetches `history:get { after }` from `lastSeq` — or from below the lowest message held still streaming, to
   * read its later versions — while pages say there is more; one fill per conversation at a time (a request
   * meanwhile makes it go round once more). Never rejects: failures go to 'error' listeners.
   */
  private fill(conversationId: string): Promise<void> {
    const running = this.fills.get(conversationId);
    if (running) {
      this.refill.add(conversationId);
      return running;
    }
    const filling = this.runFill(conversationId)
      .catch((err: unknown) => {
        if (err instanceof ChatError && err.code === 'NOT_FOUND') this.deleted(conversationId);
        else this.report(err);
      })
      .finally(() => this.fills.delete(conversationId));
    this.fills.set(conversationId, filling);
    return filling;
  }

  private async runFill(conversationId: string): Promise<void> {
    const view = this.views.get(conversationId);
    if (!view) return;
    // Seqs up to `read` came in this round's pages: paging on from there does not read a streaming message twice.
    let read = 0;
    for (;;) {
      const after = view.fillAfter(read);
      if (after === undefined || this.views.get(conversationId) !== view) return;
      if (read === 0) {
        // A request from now on asks for a round that starts after this moment.
        this.refill.delete(conversationId);
        this.quiet.rereading(conversationId, Date.now());
      }
      const page = await this.server.command('history:get', { conversationId, after, limit: FILL_LIMIT });
      if (this.views.get(conversationId) !== view) return;
      this.conversation(page.conversation);
      for (const m of view.applyPage(page, 'newer')) {
        this.events.emit('message', m);
        this.heard(m);
      }
      read = page.messages.reduce((max, m) => Math.max(max, m.seq), after);
      // No progress while a gap remains would loop forever: stop; the next event or reconnect tries again.
      if (read > after && (page.hasMore || view.gap() !== null)) continue;
      if (!this.refill.has(conversationId)) return;
      // Asked again meanwhile (an event, a catch-up, a quiet stream): a new round reads from the start again.
      read = 0;
    }
  }

  /** Background work: `synced()` waits for it; its failure goes to 'error' listeners. */
  private track(task: Promise<void>): void {
    const tracked = task.catch((err: unknown) => this.report(err)).finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  private report(err: unknown): void {
    if (this.events.has('error')) this.events.emit('error', err instanceof Error ? err : new Error(String(err)));
  }
}
