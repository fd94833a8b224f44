import { z } from 'zod';
import type { CommandName, CommandPayloads } from './events.ts';
import {
  clientMessageId,
  contentSchema,
  conversationId,
  cursor,
  LIMITS,
  messageId,
  pageLimit,
  queryPageLimit,
  renameTitle,
  seq,
  text,
  title,
} from './validation.ts';

const seqNumber = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** Get-or-create: the only reuse there is. */
const reuse = z.literal('latest', { message: 'must be "latest"' });

/** The payload schema of every client → server event; compiled once per gateway. */
export function commandSchemas(maxMessageChars: number) {
  return {
    'conversation:create': z.object({ title, reuse: reuse.optional() }).default({ title: null }),
    'conversation:list': z
      .object({ limit: pageLimit(LIMITS.conversationsPage), cursor: cursor.nullable().optional() })
      .default({ limit: LIMITS.conversationsPage.default }),
    'conversation:rename': z.object({ conversationId, title: renameTitle }),
    'conversation:delete': z.object({ conversationId }),
    'message:send': z.object({
      conversationId: conversationId.nullable().optional(),
      content: contentSchema(maxMessageChars),
      clientMessageId,
    }),
    'assistant:stop': z.object({ conversationId, messageId }),
    'history:get': z.object({
      conversationId,
      before: seqNumber.optional(),
      after: seqNumber.optional(),
      limit: pageLimit(LIMITS.historyPage),
    }),
    'auth:refresh': z.object({ token: text().pipe(z.string().min(1).max(LIMITS.tokenChars)) }),
  } as const;
}

export type CommandSchemas = ReturnType<typeof commandSchemas>;

/** The same rules for the REST routes: query strings arrive as text, and ids come in the path. */
export function restSchemas(maxMessageChars: number) {
  return {
    listQuery: z.object({ limit: queryPageLimit(LIMITS.conversationsPage), cursor: cursor.optional() }),
    historyQuery: z.object({ before: seq.optional(), after: seq.optional(), limit: queryPageLimit(LIMITS.historyPage) }),
    createBody: z.object({ title, reuse: reuse.optional() }).default({ title: null }),
    renameBody: z.object({ title: renameTitle }),
    sendBody: z.object({ content: contentSchema(maxMessageChars), clientMessageId: clientMessageId.optional() }),
    chatBody: z.object({ message: contentSchema(maxMessageChars), conversation_id: conversationId.nullable().optional() }),
  } as const;
}

// The payload types of events.ts (what clients are written against) and the schemas above (what the gateway
// accepts) are written apart, since the browser SDK must not carry zod. This fails to compile when they drift.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type PayloadsMatchSchemas = { [K in CommandName]: Same<NonNullable<z.input<CommandSchemas[K]>>, CommandPayloads[K]> };
export const payloadsMatchSchemas: PayloadsMatchSchemas = {
  'conversation:create': true,
  'conversation:list': true,
  'conversation:rename': true,
  'conversation:delete': true,
  'message:send': true,
  'assistant:stop': true,
  'history:get': true,
  'auth:refresh': true,
};
