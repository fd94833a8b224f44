import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Publisher } from '../shared/broadcast.ts';
import type { MessageDto } from '../shared/events.ts';
import { isDatabaseUnavailable } from '../shared/failures.ts';
import type { AssistantProvider, ChatTurn } from './provider.ts';
import type { ReplyStore } from './reply-store.ts';

export interface ReplyTiming {
  /** Deltas are coalesced: at most one `message:delta` per this many ms. */
  flushMs: number;
  /** The partial text is saved about this often while it grows. */
  persistMs: number;
  /** Even without new text, the reply touches its row this often, so the sweeper knows its node is alive. */
  heartbeatMs: number;
}

export interface ReplyDeps {
  userId: string;
  message: MessageDto;
  provider: AssistantProvider;
  store: ReplyStore;
  /** The reply as stored now, when something else ended it. */
  find: (userId: string, messageId: string) => Promise<MessageDto | undefined>;
  publish: Publisher;
  log: Logger;
  metrics: Metrics;
  timing: ReplyTiming;
  /** When the reply was asked for, right after the user message was committed and acknowledged: the origin of processingTimeMs and the latency metrics. */
  startedAt: number;
}

type EndReason = 'stopped' | 'shutdown' | 'superseded';

/** Backoff of the retried save of a reply's end. */
const END_RETRY_FIRST_MS = 250;
const END_RETRY_MAX_MS = 5_000;

/** One streaming assistant reply: its deltas, its saved partial text, and its end. */
export class Reply {
  /** Resolves with the ended reply (undefined if another node or the sweeper ended it first). */
  readonly done: Promise<MessageDto | undefined>;
  private resolveDone!: (m: MessageDto | undefined) => void;
  private text = '';
  private pending = '';
  private deltas = 0;
  private lastFlushAt = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private saved = { deltas: 0, at: Date.now() };
  private saving: Promise<void> = Promise.resolve();
  private endReason: EndReason | undefined;
  private readonly controller = new AbortController();
  private readonly abandonController = new AbortController();
  private readonly abandoned = this.abandonController.signal;
  private readonly metadata: Record<string, unknown>;

  private readonly d: ReplyDeps;

  constructor(deps: ReplyDeps) {
    this.d = deps;
    this.metadata = { ...deps.message.metadata };
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  start(turns: ChatTurn[]): void {
    this.run(turns).then(this.resolveDone, (err) => {
      this.d.log.error({ err, messageId: this.d.message.id }, 'reply ended abnormally');
      this.resolveDone(undefined);
    });
  }

  /** Ends the reply early; resolves with the ended reply. */
  stop(reason: Exclude<EndReason, 'superseded'>): Promise<MessageDto | undefined> {
    this.endReason ??= reason;
    this.controller.abort();
    return this.done;
  }

  private async run(turns: ChatTurn[]): Promise<MessageDto | undefined> {
    const { message, provider, timing } = this.d;
    const heartbeat = setInterval(() => this.save(), timing.persistMs);
    let status: 'complete' | 'stopped' | 'failed' = 'complete';
    let error: { code: string; message: string } | undefined;
    try {
      for await (const chunk of provider.stream(turns, this.controller.signal)) {
        if (this.endReason) break;
        this.push(chunk);
      }
      if (this.endReason) throw new Error('ended');
    } catch (err) {
      if (this.endReason === 'stopped') status = 'stopped';
      else if (this.endReason === 'shutdown') {
        status = 'failed';
        error = { code: 'INTERRUPTED', message: 'the gateway shut down before the reply ended' };
      } else if (this.endReason !== 'superseded') {
        status = 'failed';
        const e = err as { code?: unknown; message?: string };
        error = { code: typeof e.code === 'string' ? e.code : 'PROVIDER_ERROR', message: e.message ?? 'the assistant failed' };
        this.d.log.warn({ messageId: message.id, err: error }, 'assistant reply failed');
      }
    } finally {
      clearInterval(heartbeat);
      clearTimeout(this.flushTimer);
    }
    this.flush();
    await this.saving;
    if (this.endReason === 'superseded') return this.d.find(this.d.userId, message.id);

    const processingTimeMs = Math.round(performance.now() - this.d.startedAt);
    const metadata = { ...this.metadata, deltaIndex: this.deltas, processingTimeMs, ...(error ? { error } : {}) };
    const ended = await this.saveEnd(status, metadata);
    if (!ended) return this.d.find(this.d.userId, message.id);
    this.d.metrics.assistantTotal.observe({ status }, processingTimeMs / 1000);
    this.d.publish([{ userId: this.d.userId, event: 'message:updated', payload: { message: ended } }]);
    return ended;
  }

  /**
   * Saves the reply's end with its whole text. A database that is away for a moment must not lose it: the tabs
   * have been shown that text, and the sweeper would otherwise end the reply as interrupted with only what was
   * saved before. So the save is retried, backing off, for as long as this node lives (shutdown gives up on it).
   */
  private async saveEnd(status: 'complete' | 'stopped' | 'failed', metadata: Record<string, unknown>): Promise<MessageDto | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.d.store.finish(this.d.message.id, status, metadata, this.text);
      } catch (err) {
        // Only an outage is worth waiting out. A write the database refuses for good (text it cannot store) would keep
        // the reply streaming for as long as this node lives, since other nodes' sweepers leave running replies alone.
        if (this.abandoned.aborted || !isDatabaseUnavailable(err)) throw err;
        if (attempt === 0)
          this.d.log.warn({ messageId: this.d.message.id, err: (err as Error).message }, 'could not save the end of a reply; retrying');
        const backoffMs = Math.min(END_RETRY_MAX_MS, END_RETRY_FIRST_MS * 2 ** attempt);
        await sleep(backoffMs, undefined, { signal: this.abandoned }).catch(() => undefined);
      }
    }
  }

  /** Shutdown's last word: stop retrying the end (the sweeper of a surviving node ends the reply with its saved text). */
  abandon(): void {
    this.abandonController.abort();
  }

  private push(chunk: string) {
    if (this.deltas === 0 && this.pending === '') {
      this.d.metrics.assistantFirstDelta.observe((performance.now() - this.d.startedAt) / 1000);
    }
    this.pending += chunk;
    const wait = this.lastFlushAt + this.d.timing.flushMs - performance.now();
    if (wait <= 0) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), wait);
  }

  private flush() {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.pending) return;
    const { message, userId } = this.d;
    const delta = { conversationId: message.conversationId, messageId: message.id, index: this.deltas, text: this.pending };
    this.text += this.pending;
    this.pending = '';
    this.deltas++;
    this.lastFlushAt = performance.now();
    this.d.publish([{ userId, event: 'message:delta', payload: delta }]);
  }

  /** Saves the text as of the last delta sent (so metadata.deltaIndex matches it), one save at a time. */
  private save() {
    this.saving = this.saving.then(async () => {
      const unchanged = this.deltas === this.saved.deltas;
      if (unchanged && Date.now() - this.saved.at < this.d.timing.heartbeatMs) return;
      const snapshot = { text: this.text, deltas: this.deltas };
      try {
        const stillStreaming = await this.d.store.saveProgress(this.d.message.id, snapshot.text, {
          ...this.metadata,
          deltaIndex: snapshot.deltas,
        });
        this.saved = { deltas: snapshot.deltas, at: Date.now() };
        if (!stillStreaming && !this.endReason) {
          // Stopped through the database by another node, or swept as interrupted: stop producing.
          this.endReason = 'superseded';
          this.controller.abort();
        }
      } catch (err) {
        this.d.log.warn({ messageId: this.d.message.id, err: (err as Error).message }, 'could not save reply progress');
      }
    });
  }
}
