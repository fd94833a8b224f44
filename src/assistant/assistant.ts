import type { MessageService } from '../messages/message.service.ts';
import type { Audit } from '../observability/audit.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Publisher } from '../shared/broadcast.ts';
import { GatewayError, notFound } from '../shared/errors.ts';
import type { MessageDto } from '../shared/events.ts';
import { waitAtMost } from '../shared/time-bounds.ts';
import type { McpTools } from './mcp.ts';
import type { AssistantProvider, ChatTurn } from './provider.ts';
import { Reply, type ReplyLimits, type ReplyTiming } from './reply.ts';
import type { ReplyStore } from './reply-store.ts';
import { systemPromptFor } from './system-prompt.ts';
import { settleStoredToolCalls, ToolCallError } from './tool-calls.ts';

export interface AssistantTiming extends ReplyTiming {
  /** A streaming reply whose heartbeat is older than this is taken as interrupted (its node died). */
  staleMs: number;
}

export const DEFAULT_TIMING: AssistantTiming = { flushMs: 50, persistMs: 1000, heartbeatMs: 5000, staleMs: 15_000 };

/** What a reply is given and what bounds it; the defaults are those of the configuration. */
export interface AssistantSettings extends ReplyLimits {
  /** The system prompt, with its placeholders (`{{userId}}`, `{{date}}`); undefined for none. */
  systemPrompt?: string;
  /** How many of the conversation's messages before the reply the provider is given (ASSISTANT_CONTEXT_MESSAGES). */
  contextMessages: number;
}

export const DEFAULT_SETTINGS: AssistantSettings = {
  contextMessages: 50,
  timeoutMs: 120_000,
  maxChars: 32_000,
  toolTimeoutMs: 30_000,
};

export interface AssistantDeps {
  /** Undefined with ASSISTANT=none: no reply is ever started. */
  provider?: AssistantProvider;
  /** Tools over MCP (MCP_SERVERS); absent when none are configured. */
  tools?: McpTools;
  settings?: Partial<AssistantSettings>;
  messages: MessageService;
  store: ReplyStore;
  publish: Publisher;
  /** Asks the other nodes to stop a reply that runs on one of them (absent on a single node). */
  stopElsewhere?: (messageId: string) => Promise<MessageDto | undefined>;
  /** The replies the other nodes run now, of those that answer (absent on a single node). */
  runningElsewhere?: () => Promise<string[]>;
  metrics: Metrics;
  log: Logger;
  audit: Audit;
  /**
   * How long this node has reached the database without a break. A reply whose saves stopped because the
   * database was away is alive, not interrupted: the sweeper only judges replies once its own node has reached
   * the database for a whole staleness period, by which time every live node has saved its replies again.
   */
  databaseHealthyForMs: () => number;
  timing?: Partial<AssistantTiming>;
}

/** Runs assistant replies on this node and ends them however they end: complete, stopped, failed or interrupted. */
export function createAssistant(deps: AssistantDeps) {
  const timing = { ...DEFAULT_TIMING, ...deps.timing };
  const settings = { ...DEFAULT_SETTINGS, ...deps.settings };
  // Replies running on this node, by message id: local work in progress, not a routing table.
  const running = new Map<string, Reply>();
  let sweeper: NodeJS.Timeout | undefined;
  let sweeping: Promise<void> = Promise.resolve();

  /** What a user message's reply is stored with, in the message's own transaction; undefined without an assistant. */
  function newReply(): { metadata: Record<string, unknown> } | undefined {
    return deps.provider ? { metadata: { model: deps.provider.model, deltaIndex: 0 } } : undefined;
  }

  /**
   * Runs the reply stored with a user message; resolves with the reply once it has ended. Without `stored` (a
   * repeat of the message), finds the reply the first attempt stored: still running here, it is waited for.
   */
  async function replyTo(userId: string, userMessage: MessageDto, stored?: MessageDto): Promise<MessageDto | undefined> {
    const provider = deps.provider;
    if (!provider || userMessage.role !== 'user') return undefined;
    if (!stored) {
      const existing = await deps.messages.findReply(userId, userMessage.id);
      return existing && (running.get(existing.id)?.done ?? existing);
    }
    const startedAt = performance.now();
    // Registered before anything else is awaited, so a stop arriving meanwhile reaches it here.
    const reply = new Reply({
      userId,
      message: stored,
      provider,
      tools: deps.tools && (() => deps.tools!.toolsFor(userId)),
      limits: settings,
      store: deps.store,
      find: deps.messages.find,
      publish: deps.publish,
      log: deps.log,
      timing,
      startedAt,
      metrics: deps.metrics,
    });
    running.set(stored.id, reply);
    reply.done.finally(() => running.delete(stored.id));
    const turns = await context(userId, stored).catch((err: Error) => {
      deps.log.warn({ messageId: stored.id, err: err.message }, 'reply context unavailable; answering the message alone');
      return [{ role: 'user' as const, content: userMessage.content }];
    });
    reply.start({ system: systemPromptFor(settings.systemPrompt, userId), turns });
    return reply.done;
  }

  /** Every reply from its first step (storing its row) to its end, so shutdown can wait for all of them. */
  const replies = new Set<Promise<unknown>>();
  function tracked(userId: string, userMessage: MessageDto, stored?: MessageDto): Promise<MessageDto | undefined> {
    const promise = replyTo(userId, userMessage, stored);
    replies.add(promise);
    const forget = () => replies.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  async function context(userId: string, reply: MessageDto): Promise<ChatTurn[]> {
    const page = await deps.messages.history(
      userId,
      reply.conversationId,
      { before: reply.seq, limit: settings.contextMessages },
      { audited: false },
    );
    return page.messages.filter((m) => m.content.length > 0).map((m) => ({ role: m.role, content: m.content }));
  }

  /** Stops a reply from any tab on any node: locally, else through the node running it, else in the database. */
  async function stop(userId: string, conversationId: string, messageId: string): Promise<MessageDto> {
    const stopped = await stopReply(userId, conversationId, messageId).catch((err: unknown) => {
      if (err instanceof GatewayError && err.code === 'NOT_FOUND')
        deps.audit({ userId, op: 'assistant.stop', outcome: 'not_found', conversationId, messageId });
      throw err;
    });
    deps.audit({ userId, op: 'assistant.stop', outcome: 'ok', conversationId, messageId });
    return stopped;
  }

  async function stopReply(userId: string, conversationId: string, messageId: string): Promise<MessageDto> {
    const message = await deps.messages.find(userId, messageId);
    if (!message || message.conversationId !== conversationId || message.role !== 'assistant') throw notFound('message');
    if (message.status !== 'streaming') return message;
    const local = running.get(messageId);
    if (local) return (await local.stop('stopped')) ?? (await deps.messages.find(userId, messageId)) ?? message;
    const remote = await deps.stopElsewhere?.(messageId).catch((err: Error) => {
      deps.log.warn({ messageId, err: err.message }, 'no node answered the stop request');
      return undefined;
    });
    if (remote) return remote;
    // No node runs it any more: end it here with the text saved so far.
    const processingTimeMs = Date.now() - Date.parse(message.createdAt);
    const metadata = settleStoredToolCalls(message.metadata, ToolCallError.STOPPED);
    const ended = await deps.store.finish(messageId, 'stopped', { ...metadata, processingTimeMs });
    if (ended) deps.publish([{ userId, event: 'message:updated', payload: { message: ended } }]);
    return ended ?? (await deps.messages.find(userId, messageId)) ?? message;
  }

  /** A stop forwarded by another node: answer with the stopped reply if it runs here, else null. */
  async function stopIfRunningHere(messageId: string): Promise<MessageDto | null> {
    const local = running.get(messageId);
    return local ? ((await local.stop('stopped')) ?? null) : null;
  }

  async function sweep() {
    if (deps.databaseHealthyForMs() < timing.staleMs) return;
    try {
      // A row left unsaved is not enough: the reply's node may have lost only its own way to the database (a network
      // partition, its pool reconnecting, its end still retrying) while the others reach it, and it saves the end,
      // with the whole text its tabs were shown, once it can. Only the replies no live node runs are interrupted.
      const stale = (await deps.store.stale(timing.staleMs)).filter((id) => !running.has(id));
      if (stale.length === 0) return;
      const alive = new Set(await (deps.runningElsewhere?.() ?? Promise.resolve([])));
      const interrupted = await deps.store.failStale(
        timing.staleMs,
        stale.filter((id) => !alive.has(id)),
      );
      for (const { userId, message } of interrupted) {
        deps.log.warn({ messageId: message.id, conversationId: message.conversationId }, 'reply interrupted: its node stopped');
        deps.publish([{ userId, event: 'message:updated', payload: { message } }]);
      }
    } catch (err) {
      deps.log.warn({ err: (err as Error).message }, 'sweep of interrupted replies failed');
    }
  }

  return {
    newReply,
    replyTo: tracked,
    stop,
    stopIfRunningHere,
    /** The replies running on this node (another node's sweeper asks before ending one). */
    runningHere: (): string[] => [...running.keys()],
    startSweeper() {
      const run = () => {
        sweeping = sweep();
      };
      run();
      sweeper = setInterval(run, Math.max(250, Math.floor(timing.staleMs / 3)));
      sweeper.unref();
    },
    /** Shutdown: let running replies finish within the bound, then end the rest as interrupted. */
    async drain(timeoutMs: number) {
      const deadline = Date.now() + timeoutMs;
      const left = () => Math.max(0, deadline - Date.now());
      clearInterval(sweeper);
      // A sweep still running holds a database connection; closing the pool under it would hang.
      await waitAtMost(sweeping, left());
      const all = () => Promise.allSettled([...replies]);
      // Replies run to their end within the bound; the rest end as interrupted, with their text.
      await waitAtMost(all(), left() * 0.75);
      for (const reply of running.values()) reply.stop('shutdown');
      await waitAtMost(all(), left());
      // A reply still retrying its end (the database away) is left to the sweeper of a surviving node.
      for (const reply of running.values()) reply.abandon();
    },
    get runningCount() {
      return running.size;
    },
  };
}

export type Assistant = ReturnType<typeof createAssistant>;
