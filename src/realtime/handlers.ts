import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Assistant } from '../assistant/assistant.ts';
import type { TokenVerifier } from '../auth/jwt.ts';
import type { SendMessage } from '../chat/send-message.ts';
import type { ConversationService } from '../conversations/conversation.service.ts';
import { historyCost, type Budget, type UserLimits } from '../limits/user-limits.ts';
import type { MessageService } from '../messages/message.service.ts';
import { reportFailure } from '../observability/failures.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { withRequest } from '../observability/request-context.ts';
import type { Publisher } from '../shared/broadcast.ts';
import { commandSchemas, type CommandSchemas } from '../shared/commands.ts';
import { ErrorCode, GatewayError } from '../shared/errors.ts';
import type { Ack, CommandName, CommandResults } from '../shared/events.ts';
import { parse } from '../shared/validation.ts';
import type { ChatSocket } from './types.ts';

/** What the commands act on: the same services the REST routes use. */
export interface CommandDeps {
  conversations: ConversationService;
  messages: Pick<MessageService, 'history'>;
  sendMessage: SendMessage;
  assistant: Pick<Assistant, 'stop'>;
  publish: Publisher;
  limits: UserLimits;
  /** Commands of one socket being handled at once; more are refused at once. */
  maxInflightPerSocket: number;
  maxMessageChars: number;
  /** True once shutdown has begun: new sends (and so new replies) go to another node. */
  isClosing: () => boolean;
}

interface HandlerDeps extends CommandDeps {
  verifyToken: TokenVerifier;
  metrics: Metrics;
  log: Logger;
  /** Counts handlers in flight, so shutdown can wait for their units of work. */
  inflight: { count: number };
}

/** What a handler hands back: the ack's data, and what to do once the ack is sent (broadcasts, the assistant). */
interface Handled<K extends CommandName> {
  data: CommandResults[K];
  after?: () => void;
}

type Handler<K extends CommandName> = (socket: ChatSocket, payload: z.infer<CommandSchemas[K]>) => Promise<Handled<K>>;
type CommandTable = { [K in CommandName]: Handler<K> };

/** What each command draws on (see limits/user-limits.ts); `message:send` is counted by the send itself, for both doors. */
const COSTS: { [K in CommandName]: (payload: z.infer<CommandSchemas[K]>) => [Budget, number] | undefined } = {
  'conversation:create': () => ['write', 1],
  'conversation:list': () => ['read', 1],
  'conversation:rename': () => ['write', 1],
  'conversation:delete': () => ['write', 1],
  'message:send': () => undefined,
  'assistant:stop': () => ['write', 1],
  'history:get': (p) => ['read', historyCost(p.limit)],
  'auth:refresh': () => ['refresh', 1],
};

/** How soon a socket over its in-flight cap may try again: its earlier commands are being answered. */
const INFLIGHT_RETRY_MS = 100;

/**
 * The command handlers, built once per gateway and shared by every socket: validate → authorize → commit →
 * ack → broadcast. Every socket shares one listener that dispatches here, not closures of its own, because
 * per-socket memory is what limits how many idle tabs a node holds.
 */
export function createDispatcher(deps: HandlerDeps): (this: ChatSocket, event: string, ...args: unknown[]) => void {
  const { conversations, messages, assistant, publish } = deps;
  const schemas = commandSchemas(deps.maxMessageChars);
  const commands: CommandTable = {
    'conversation:create': async (socket, p) => {
      const outcome = await conversations.create(socket.data.userId, p, socket.data.issuedAt);
      return { data: outcome.data, after: () => publish(outcome.broadcasts) };
    },
    'conversation:list': async (socket, p) => ({ data: await conversations.list(socket.data.userId, p) }),
    'conversation:rename': async (socket, p) => {
      const outcome = await conversations.rename(socket.data.userId, p);
      return { data: outcome.data, after: () => publish(outcome.broadcasts) };
    },
    'conversation:delete': async (socket, p) => {
      const outcome = await conversations.remove(socket.data.userId, p);
      return { data: outcome.data, after: () => publish(outcome.broadcasts) };
    },
    'message:send': async (socket, p) => {
      if (deps.isClosing()) {
        throw new GatewayError(ErrorCode.UNAVAILABLE, 'this node is shutting down; retry and you will reach another', {
          retryAfterMs: 500,
        });
      }
      const sent = await deps.sendMessage(socket.data.userId, { ...p, client: socket.data.client, issuedAt: socket.data.issuedAt });
      const { message, conversation } = sent.data;
      return { data: { message, conversation }, after: () => void sent.announce() };
    },
    'assistant:stop': async (socket, p) => ({
      data: { message: await assistant.stop(socket.data.userId, p.conversationId, p.messageId) },
    }),
    'history:get': async (socket, p) => ({ data: await messages.history(socket.data.userId, p.conversationId, p) }),
    'auth:refresh': async (socket, p) => {
      let identity;
      try {
        identity = await deps.verifyToken(p.token);
      } catch (err) {
        // TOKEN_EXPIRED is a handshake and REST code; a refused refresh answers UNAUTHORIZED.
        throw err instanceof GatewayError ? new GatewayError(ErrorCode.UNAUTHORIZED, err.message) : err;
      }
      if (identity.userId !== socket.data.userId) {
        throw new GatewayError(ErrorCode.UNAUTHORIZED, 'the new token is for another user');
      }
      // The expiry sweep reads socket.data.exp: moving it is all a refresh takes.
      socket.data.exp = Math.max(socket.data.exp, identity.exp);
      socket.data.issuedAt = Math.max(socket.data.issuedAt ?? 0, identity.issuedAt ?? 0) || undefined;
      return { data: { exp: socket.data.exp } };
    },
  };

  const run = async (socket: ChatSocket, event: string, payload: unknown): Promise<{ data: unknown; after?: () => void }> => {
    if (!Object.hasOwn(commands, event)) {
      throw new GatewayError(ErrorCode.VALIDATION, `unknown event "${event.slice(0, 50)}"`);
    }
    const name = event as CommandName;
    const parsed = parse(schemas[name], payload);
    const cost = (COSTS[name] as (p: unknown) => [Budget, number] | undefined)(parsed);
    if (cost) await deps.limits.consume(socket.data.userId, ...cost);
    const handler = commands[name] as (s: ChatSocket, p: unknown) => Promise<{ data: unknown; after?: () => void }>;
    return handler(socket, parsed);
  };

  // One function for every socket: Socket.IO calls `onAny` listeners with the socket as `this`.
  return function dispatch(this: ChatSocket, event: string, ...args: unknown[]) {
    // Metric label: an unknown name counts as `unknown`, so clients cannot grow the label set.
    const label = Object.hasOwn(commands, event) ? event : 'unknown';
    void answer(this, deps, event, label, args, run);
  };
}

async function answer(
  socket: ChatSocket,
  deps: HandlerDeps,
  event: string,
  label: string,
  args: unknown[],
  run: (socket: ChatSocket, event: string, payload: unknown) => Promise<{ data: unknown; after?: () => void }>,
): Promise<void> {
  const ack = args[args.length - 1];
  // Socket.IO puts the ack callback last; without one there is nobody to answer, so nothing is done.
  if (typeof ack !== 'function') {
    deps.metrics.socketEvents.inc({ event: label, outcome: 'NO_ACK' });
    return;
  }
  const payload = args.length > 1 ? args[0] : undefined;
  const started = performance.now();
  // One socket cannot keep the node busy for everyone: past its cap, it waits for its own answers.
  if ((socket.data.inflight ?? 0) >= deps.maxInflightPerSocket) {
    deps.metrics.socketEvents.inc({ event: label, outcome: ErrorCode.RATE_LIMITED });
    const error = new GatewayError(ErrorCode.RATE_LIMITED, 'too many commands in flight on this socket', {
      retryAfterMs: INFLIGHT_RETRY_MS,
    });
    (ack as (r: Ack<unknown>) => void)({ ok: false, error: error.toWire() });
    return;
  }
  socket.data.inflight = (socket.data.inflight ?? 0) + 1;
  deps.inflight.count++;
  let result: Ack<unknown>;
  let after: (() => void) | undefined;
  try {
    const handled = await withRequest({ requestId: randomUUID(), door: 'socket' }, () => run(socket, String(event), payload));
    result = { ok: true, data: handled.data };
    after = handled.after;
  } catch (err) {
    const error = reportFailure(err, deps, { event: label, userId: socket.data.userId }, 'socket command failed');
    result = { ok: false, error: error.toWire() };
  } finally {
    deps.inflight.count--;
    socket.data.inflight!--;
  }
  deps.metrics.socketEvents.inc({ event: label, outcome: result.ok ? 'ok' : result.error.code });
  deps.metrics.ackDuration.observe({ event: label }, (performance.now() - started) / 1000);
  (ack as (r: Ack<unknown>) => void)(result);
  try {
    after?.();
  } catch (err) {
    deps.log.error({ err, event: label }, 'broadcast after ack failed');
  }
}
