import type { z } from 'zod';
import type { Assistant } from '../assistant/assistant.ts';
import type { TokenVerifier } from '../auth/jwt.ts';
import { dbErrorKind, toGatewayError } from '../db/errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Services } from '../services.ts';
import { ErrorCode, GatewayError } from '../shared/errors.ts';
import type { Ack, CommandName, CommandResults } from '../shared/events.ts';
import { parse } from '../shared/validation.ts';
import type { CommandSchemas } from './commands.ts';
import type { ChatSocket } from './types.ts';

export interface HandlerDeps {
  services: Services;
  assistant: Assistant;
  verifyToken: TokenVerifier;
  schemas: CommandSchemas;
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

type Handler<K extends CommandName> = (payload: z.infer<CommandSchemas[K]>) => Promise<Handled<K>>;

const COMMANDS: ReadonlySet<string> = new Set<CommandName>([
  'conversation:create',
  'conversation:list',
  'conversation:rename',
  'conversation:delete',
  'message:send',
  'assistant:stop',
  'history:get',
  'auth:refresh',
]);

/** Registers every command on a socket: validate → authorize → commit → ack → broadcast, one ack per event. */
export function registerHandlers(socket: ChatSocket, deps: HandlerDeps): void {
  const { services, assistant, schemas } = deps;
  const userId = socket.data.userId;

  const on = <K extends CommandName>(event: K, handler: Handler<K>) => {
    // Registered untyped: a payload is whatever the client sent until its schema says otherwise.
    (socket as unknown as { on(e: string, l: (...args: unknown[]) => void): void }).on(event, (...args: unknown[]) => {
      void answer(socket, deps, event, args, (payload) => handler(parse(schemas[event], payload) as z.infer<CommandSchemas[K]>));
    });
  };

  on('conversation:create', async (p) => {
    const outcome = await services.conversations.create(userId, p);
    return { data: outcome.data, after: () => services.publish(outcome.broadcasts) };
  });

  on('conversation:list', async (p) => ({ data: await services.conversations.list(userId, p) }));

  on('conversation:rename', async (p) => {
    const outcome = await services.conversations.rename(userId, p);
    return { data: outcome.data, after: () => services.publish(outcome.broadcasts) };
  });

  on('conversation:delete', async (p) => {
    const outcome = await services.conversations.remove(userId, p);
    return { data: outcome.data, after: () => services.publish(outcome.broadcasts) };
  });

  on('message:send', async (p) => {
    await services.limitSend(userId);
    const outcome = await services.messages.append(userId, p);
    const { message, conversation } = outcome.data;
    return { data: { message, conversation }, after: () => void services.announceUserMessage(userId, outcome) };
  });

  on('assistant:stop', async (p) => ({ data: { message: await assistant.stop(userId, p.conversationId, p.messageId) } }));

  on('history:get', async (p) => ({ data: await services.messages.history(userId, p.conversationId, p) }));

  on('auth:refresh', async (p) => {
    let identity;
    try {
      identity = deps.verifyToken(p.token);
    } catch (err) {
      // TOKEN_EXPIRED is a handshake and REST code; a refused refresh answers UNAUTHORIZED.
      throw err instanceof GatewayError ? new GatewayError(ErrorCode.UNAUTHORIZED, err.message) : err;
    }
    if (identity.userId !== userId) {
      throw new GatewayError(ErrorCode.UNAUTHORIZED, 'the new token is for another user');
    }
    socket.data.exp = Math.max(socket.data.exp, identity.exp);
    socket.data.rearmExpiry?.();
    return { data: { exp: socket.data.exp } };
  });

  // An unknown event that asks for an ack still gets exactly one.
  socket.onAny((event: string, ...args: unknown[]) => {
    if (COMMANDS.has(event)) return;
    void answer(socket, deps, 'unknown', args, async () => {
      throw new GatewayError(ErrorCode.VALIDATION, `unknown event "${String(event).slice(0, 50)}"`);
    });
  });
}

async function answer(
  socket: ChatSocket,
  deps: HandlerDeps,
  event: string,
  args: unknown[],
  run: (payload: unknown) => Promise<{ data: unknown; after?: () => void }>,
): Promise<void> {
  const ack = args[args.length - 1];
  // Socket.IO puts the ack callback last; without one there is nobody to answer, so nothing is done.
  if (typeof ack !== 'function') {
    deps.metrics.socketEvents.inc({ event, outcome: 'NO_ACK' });
    return;
  }
  const payload = args.length > 1 ? args[0] : undefined;
  const started = performance.now();
  deps.inflight.count++;
  let result: Ack<unknown>;
  let after: (() => void) | undefined;
  try {
    const handled = await run(payload);
    result = { ok: true, data: handled.data };
    after = handled.after;
  } catch (err) {
    const error = toGatewayError(err);
    const kind = dbErrorKind(err);
    if (kind) deps.metrics.dbErrors.inc({ kind });
    if (error.code === ErrorCode.INTERNAL || error.code === ErrorCode.UNAVAILABLE) {
      deps.log.error({ err, event, userId: socket.data.userId }, 'socket command failed');
    }
    result = { ok: false, error: error.toWire() };
  } finally {
    deps.inflight.count--;
  }
  deps.metrics.socketEvents.inc({ event, outcome: result.ok ? 'ok' : result.error.code });
  deps.metrics.ackDuration.observe({ event }, (performance.now() - started) / 1000);
  (ack as (r: Ack<unknown>) => void)(result);
  try {
    after?.();
  } catch (err) {
    deps.log.error({ err, event }, 'broadcast after ack failed');
  }
}
