import { z } from 'zod';
import { clientMessageId, contentSchema, conversationId, messageId, renameTitle, title } from '../shared/validation.ts';

const seqNumber = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** The payload schema of every client → server event; compiled once per gateway. */
export function commandSchemas(maxMessageChars: number) {
  return {
    'conversation:create': z.object({ title }).default({ title: null }),
    'conversation:list': z
      .object({ limit: z.number().int().min(1).max(100).default(20), cursor: z.string().min(1).max(200).nullable().optional() })
      .default({ limit: 20 }),
    'conversation:rename': z.object({
      conversationId,
      title: renameTitle,
    }),
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
      limit: z.number().int().min(1).max(200).default(50),
    }),
    'auth:refresh': z.object({ token: z.string().min(1).max(8192) }),
  } as const;
}

export type CommandSchemas = ReturnType<typeof commandSchemas>;
