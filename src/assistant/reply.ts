import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Publisher } from '../shared/broadcast.ts';
import type { MessageDto, ToolCallDto } from '../shared/events.ts';
import { isDatabaseUnavailable } from '../shared/failures.ts';
import { abortable } from '../shared/time-bounds.ts';
import type { AssistantProvider, AssistantTool, ReplyRequest } from './provider.ts';
import { providerErrorCode, ReplyErrorCode, replyError } from './reply-errors.ts';
import type { ReplyStore } from './reply-store.ts';
import { ToolCallError, ToolCalls, ToolFailure } from './tool-calls.ts';

export interface ReplyTiming {
  /** Deltas are coalesced: at most one `message:delta` per this many ms. */
  flushMs: number;
  /** The partial text is saved about this often while it grows. */
  persistMs: number;
  /** Even without new text, the reply touches its row this often, so the sweeper knows its node is alive. */
  heartbeatMs: number;
}

export interface ReplyLimits {
  /** Bound on the whole reply, tool calls included (ASSISTANT_TIMEOUT_MS): past it, `failed` / `PROVIDER_TIMEOUT`. */
  timeoutMs: number;
  /** Longest reply, in characters (Unicode code points) (ASSISTANT_MAX_REPLY_CHARS): past it, `failed` / `REPLY_TOO_LONG`. */
  maxChars: number;
  /** Bound on one tool call (ASSISTANT_TOOL_TIMEOUT_MS): past it, the model gets an error result. */
  toolTimeoutMs: number;
}

/** Tool calls one reply may make: the model gets an error result for any beyond (it also bounds metadata.toolsUsed). */
export const MAX_TOOL_CALLS_PER_REPLY = 50;

export interface ReplyDeps {
  userId: string;
  message: MessageDto;
  provider: AssistantProvider;
  /** The tools the reply may call, bound to its user; absent without MCP servers. */
  tools?: () => Promise<AssistantTool[]>;
  limits: ReplyLimits;
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

/** Why a reply ended before its provider finished: a stop, shutdown, another node or the sweeper, or a bound. */
type EndReason = 'stopped' | 'shutdown' | 'superseded' | 'timeout' | 'too-long';

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
  /** Characters (code points) of the reply so far, counted against limits.maxChars. */
  private chars = 0;
  private readonly calls = new ToolCalls();
  private lastFlushAt = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private saved = { deltas: 0, tools: 0, at: Date.now() };
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

  start(request: Omit<ReplyRequest, 'tools'>): void {
    this.run(request).then(this.resolveDone, (err) => {
      this.d.log.error({ err, messageId: this.d.message.id }, 'reply ended abnormally');
      this.resolveDone(undefined);
    });
  }

  /** Ends the reply early; resolves with the ended reply. */
  stop(reason: 'stopped' | 'shutdown'): Promise<MessageDto | undefined> {
    this.end(reason);
    return this.done;
  }

  private end(reason: EndReason) {
    this.endReason ??= reason;
    this.controller.abort();
  }

  private async run(request: Omit<ReplyRequest, 'tools'>): Promise<MessageDto | undefined> {
    const { message, provider, timing } = this.d;
    const signal = this.controller.signal;
    const heartbeat = setInterval(() => this.save(), timing.persistMs);
    const timeout = setTimeout(() => this.end('timeout'), this.d.limits.timeoutMs);
    let status: 'complete' | 'stopped' | 'failed' = 'complete';
    let error: { code: string; message: string } | undefined;
    try {
      const tools = await this.toolsFor(provider, signal);
      for await (const chunk of provider.stream({ ...request, tools }, signal)) {
        if (this.endReason) break;
        this.push(chunk);
      }
      if (this.endReason) throw new Error('ended');
    } catch (err) {
      switch (this.endReason) {
        case 'stopped':
          status = 'stopped';
          break;
        case 'superseded':
          break;
        case 'shutdown':
          status = 'failed';
          error = replyError(ReplyErrorCode.INTERRUPTED);
          break;
        case 'timeout':
          status = 'failed';
          error = replyError(ReplyErrorCode.PROVIDER_TIMEOUT);
          this.d.log.warn({ messageId: message.id, timeoutMs: this.d.limits.timeoutMs }, 'assistant reply timed out');
          break;
        case 'too-long':
          status = 'failed';
          error = replyError(ReplyErrorCode.REPLY_TOO_LONG);
          this.d.log.warn({ messageId: message.id, maxChars: this.d.limits.maxChars }, 'assistant reply cut at its length limit');
          break;
        default:
          status = 'failed';
          error = replyError(providerErrorCode(err));
          // The provider's own words (an upstream error body, an address) stay here; tabs get the fixed text.
          this.d.log.warn({ messageId: message.id, code: error.code, err: (err as Error)?.message }, 'assistant reply failed');
      }
    } finally {
      clearInterval(heartbeat);
      clearTimeout(timeout);
      clearTimeout(this.flushTimer);
    }
    this.flush();
    // A call still running when the reply ends ends with it: no tab is left showing it as running.
    const settled = this.calls.settleRunning(this.endReason === 'stopped' ? ToolCallError.STOPPED : ToolCallError.INTERRUPTED);
    for (const call of settled) {
      this.d.metrics.assistantToolCalls.inc({ tool: call.name, outcome: call.error ?? 'complete' });
      // Superseded: whoever ended the reply has published its end, which nothing may follow.
      if (this.endReason !== 'superseded') this.publishTool(call);
    }
    await this.saving;
    if (this.endReason === 'superseded') return this.d.find(this.d.userId, message.id);

    const processingTimeMs = Math.round(performance.now() - this.d.startedAt);
    const metadata = {
      ...this.metadata,
      deltaIndex: this.deltas,
      processingTimeMs,
      ...this.calls.metadata(),
      ...(error ? { error } : {}),
    };
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

  /** The tools for this reply, each watched (events, bounds); none when the provider calls none or listing fails. */
  private async toolsFor(provider: AssistantProvider, signal: AbortSignal): Promise<AssistantTool[]> {
    if (!provider.callsTools || !this.d.tools) return [];
    try {
      const tools = await abortable(this.d.tools(), signal);
      return tools.map((tool) => ({ ...tool, execute: (args: unknown, callSignal: AbortSignal) => this.runTool(tool, args, callSignal) }));
    } catch (err) {
      if (signal.aborted) throw err;
      this.d.log.warn({ messageId: this.d.message.id, err: (err as Error).message }, 'tools unavailable; the reply goes on without them');
      return [];
    }
  }

  /**
   * One tool call, as every tab sees it: started and ended through `tool:updated` (after the text before it), saved
   * in metadata.toolCalls at both moments, bounded by limits.toolTimeoutMs. A failure becomes an error result for
   * the model; a stop (or any end of the reply) drops whatever the call would have answered.
   */
  private async runTool(tool: AssistantTool, args: unknown, signal: AbortSignal): Promise<string> {
    if (this.endReason) throw new Error('the reply has ended');
    if (this.calls.count >= MAX_TOOL_CALLS_PER_REPLY) {
      throw new Error(`no more tool calls in this reply (at most ${MAX_TOOL_CALLS_PER_REPLY}): answer with what you have`);
    }
    this.flush();
    const call = this.calls.start(tool.name);
    this.publishTool(call);
    this.save();
    const timeout = AbortSignal.timeout(this.d.limits.toolTimeoutMs);
    const callSignal = AbortSignal.any([signal, this.controller.signal, timeout]);
    try {
      const output = await abortable(tool.execute(args, callSignal), callSignal);
      this.endTool(call);
      return output;
    } catch (err) {
      if (this.endReason || signal.aborted) {
        this.endTool(call, this.endReason === 'stopped' ? ToolCallError.STOPPED : ToolCallError.INTERRUPTED);
        throw err;
      }
      const failure = timeout.aborted
        ? new ToolFailure(
            ToolCallError.TOOL_TIMEOUT,
            'the tool did not answer in time',
            `no answer within ${this.d.limits.toolTimeoutMs} ms`,
          )
        : err instanceof ToolFailure
          ? err
          : new ToolFailure(ToolCallError.TOOL_ERROR, 'the tool failed', (err as Error)?.message ?? String(err));
      this.d.log.warn({ messageId: this.d.message.id, tool: tool.name, code: failure.code, err: failure.detail }, 'tool call failed');
      this.endTool(call, failure.code);
      throw new Error(failure.message);
    }
  }

  private endTool(call: ToolCallDto, error?: ToolCallError) {
    const ended = this.calls.end(call.id, error);
    if (!ended) return;
    this.d.metrics.assistantToolCalls.inc({ tool: ended.name, outcome: error ?? 'complete' });
    this.flush();
    this.publishTool(ended);
    this.save();
  }

  private publishTool(call: ToolCallDto) {
    const { message, userId } = this.d;
    this.d.publish([{ userId, event: 'tool:updated', payload: { conversationId: message.conversationId, messageId: message.id, call } }]);
  }

  private push(text: string) {
    if (this.endReason) return;
    const chunk = this.withinLength(text);
    if (!chunk) return;
    if (this.deltas === 0 && this.pending === '') {
      this.d.metrics.assistantFirstDelta.observe((performance.now() - this.d.startedAt) / 1000);
    }
    this.pending += chunk;
    const wait = this.lastFlushAt + this.d.timing.flushMs - performance.now();
    if (wait <= 0) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), wait);
  }

  /** What of `text` fits under limits.maxChars; reaching the limit ends the reply (its text kept up to there). */
  private withinLength(text: string): string {
    const room = this.d.limits.maxChars - this.chars;
    let taken = 0;
    let end = 0;
    for (const codePoint of text) {
      if (taken === room) {
        this.chars = this.d.limits.maxChars;
        this.end('too-long');
        return text.slice(0, end);
      }
      taken++;
      end += codePoint.length;
    }
    this.chars += taken;
    return text;
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

  /**
   * Saves the text as of the last delta sent (so metadata.deltaIndex matches it) and the tool calls so far, one save
   * at a time; a save finding nothing new since the last one only touches the row when the heartbeat is due.
   */
  private save() {
    this.saving = this.saving.then(async () => {
      const unchanged = this.deltas === this.saved.deltas && this.calls.version === this.saved.tools;
      if (unchanged && Date.now() - this.saved.at < this.d.timing.heartbeatMs) return;
      const snapshot = { text: this.text, deltas: this.deltas, tools: this.calls.version };
      try {
        const stillStreaming = await this.d.store.saveProgress(this.d.message.id, snapshot.text, {
          ...this.metadata,
          deltaIndex: snapshot.deltas,
          ...this.calls.metadata(),
        });
        this.saved = { deltas: snapshot.deltas, tools: snapshot.tools, at: Date.now() };
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
