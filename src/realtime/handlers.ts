import type { z } from 'zod';
import type { Assistant } from '../assistant/assistant.ts';
import type { TokenVerifier } from '../auth/jwt.ts';
import type { SendMessage } from '../chat/send-message.ts';
import type { ConversationService } from '../conversations/conversation.service.ts';
import type { MessageService } from '../messages/message.service.ts';
import { reportFailure } from '../observability/failures.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
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
      const outcome = await conversations.create(socket.data.userId, p);
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
      const sent = await deps.sendMessage(socket.data.userId, p);
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
      return { data: { exp: socket.data.exp } };
    },
  };

  const run = (socket: ChatSocket, event: string, payload: unknown): Promise<{ data: unknown; after?: () => void }> => {
    if (!Object.hasOwn(commands, event)) {
      return Promise.reject(new GatewayError(ErrorCode.VALIDATION, `unknown event "${event.slice(0, 50)}"`));
    }
    const name = event as CommandName;
    const handler = commands[name] as (s: ChatSocket, p: unknown) => Promise<{ data: unknown; after?: () => void }>;
    return handler(socket, parse(schemas[name], payload));
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
  deps.inflight.count++;
  let result: Ack<unknown>;
  let after: (() => void) | undefined;
  try {
    const handled = await run(socket, String(event), payload);
    result = { ok: true, data: handled.data };
    after = handled.after;
  } catch (err) {
    const error = reportFailure(err, deps, { event: label, userId: socket.data.userId }, 'socket command failed');
    result = { ok: false, error: error.toWire() };
  } finally {
    deps.inflight.count--;
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
