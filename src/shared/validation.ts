import { z } from 'zod';
import { ErrorCode, GatewayError } from './errors.ts';

/** Every size limit of the wire contract, in one place: the socket commands and the REST routes both read them. */
export const LIMITS = {
  conversationsPage: { max: 100, default: 20 },
  historyPage: { max: 200, default: 50 },
  titleChars: 200,
  clientMessageIdChars: 100,
  cursorChars: 200,
  /** A JWT in auth:refresh; real tokens are far shorter, and this bounds what the verifier is asked to parse. */
  tokenChars: 8192,
} as const;

/** Parses untrusted input; any failure is a VALIDATION error naming the fields at fault. */
export function parse<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const detail = result.error.issues
    .slice(0, 5)
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
  throw new GatewayError(ErrorCode.VALIDATION, detail || 'invalid input');
}

// A uuid may be written in either case; the gateway compares ids as strings (a reply's conversation, the replies
// running on a node), and PostgreSQL answers in lower case, so ids are lowered as they come in.
export const conversationId = z.uuid({ message: 'must be a conversation id (uuid)' }).transform((id) => id.toLowerCase());
export const messageId = z.uuid({ message: 'must be a message id (uuid)' }).transform((id) => id.toLowerCase());
/**
 * Text as it will be stored and compared. PostgreSQL refuses the NUL character outright; half of a UTF-16
 * surrogate pair (a lone surrogate, which JSON allows) would be stored as U+FFFD, so what a client sent and what
 * it later reads, or looks an idempotency key up by, would differ.
 */
export const text = () =>
  z
    .string()
    .refine((s) => !s.includes('\u0000'), 'must not contain the NUL character')
    .refine((s) => s.isWellFormed(), 'must be well-formed Unicode (no lone surrogate)');

/** A conversation title: up to 200 characters; empty or white space means no title. */
export const renameTitle = text()
  .pipe(z.string().trim().max(LIMITS.titleChars))
  .nullable()
  .transform((t) => (t ? t : null));
/** Optional on create. */
export const title = renameTitle.optional().transform((t) => t ?? null);
/** `assistant:` is reserved: the assistant's reply to a message carries `assistant:<message id>`. */
export const clientMessageId = text()
  .pipe(z.string().min(1).max(LIMITS.clientMessageIdChars))
  .refine((id) => !id.startsWith('assistant:'), 'must not start with "assistant:" (reserved)');
/** Sequence numbers: non-negative integers; query strings arrive as text. */
export const seq = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const cursor = text().pipe(z.string().min(1).max(LIMITS.cursorChars));

/** A page size from 1 to `max`. */
export const pageLimit = (page: { max: number; default: number }) => z.number().int().min(1).max(page.max).default(page.default);
/** The same in a query string, which arrives as text. */
export const queryPageLimit = (page: { max: number; default: number }) =>
  z.coerce.number().int().min(1).max(page.max).default(page.default);

/** Message content: 1..maxChars characters (code points, as users count them) and not only white space. */
export function contentSchema(maxChars: number) {
  return text()
    .refine((s) => withinChars(s, maxChars), `must be at most ${maxChars} characters`)
    .refine((s) => s.trim().length > 0, 'must not be empty or only white space');
}

function withinChars(s: string, max: number): boolean {
  // UTF-16 length bounds the code point count from above, and from below by half.
  if (s.length <= max) return true;
  if (s.length > max * 2) return false;
  let n = 0;
  for (const _ of s) if (++n > max) return false;
  return true;
}
