import { ProviderErrorCode } from './provider.ts';

/**
 * Every `metadata.error.code` a reply can end with. The message shown with each is fixed: a provider's own error
 * text may quote the request, a key's name or an internal address, so it goes to the log and tabs get these.
 */
export const ReplyErrorCode = {
  ...ProviderErrorCode,
  /** The reply reached ASSISTANT_MAX_REPLY_CHARS; its text is kept up to there. */
  REPLY_TOO_LONG: 'REPLY_TOO_LONG',
  /** The reply's node shut down or died before the reply ended. */
  INTERRUPTED: 'INTERRUPTED',
} as const;

export type ReplyErrorCode = (typeof ReplyErrorCode)[keyof typeof ReplyErrorCode];

const TEXT: Record<ReplyErrorCode, string> = {
  PROVIDER_ERROR: 'the assistant could not answer',
  PROVIDER_UNREACHABLE: 'the assistant could not be reached',
  PROVIDER_TIMEOUT: 'the assistant took too long to answer',
  MAX_STEPS: 'the assistant kept calling tools without answering',
  REPLY_TOO_LONG: 'the reply reached its length limit',
  INTERRUPTED: 'the reply was interrupted before it ended',
};

/** The `metadata.error` of a failed reply: its code and the fixed text that goes with it. */
export function replyError(code: ReplyErrorCode): { code: ReplyErrorCode; message: string } {
  return { code, message: TEXT[code] };
}

/** A code a provider may end with; anything else it throws counts as PROVIDER_ERROR. */
export function providerErrorCode(err: unknown): ReplyErrorCode {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && Object.hasOwn(ProviderErrorCode, code) ? (code as ReplyErrorCode) : ReplyErrorCode.PROVIDER_ERROR;
}
