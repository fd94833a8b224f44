import type { MessageRole } from '../messages/message.entity.ts';

/** One message of the conversation before the reply, as the provider is given it. */
export interface ChatTurn {
  role: MessageRole;
  content: string;
}

/**
 * A tool the model may call during a reply (tools over MCP), already bound to the user whose message the reply
 * answers: the provider only decides when to call it and with what arguments, never on whose behalf.
 */
export interface AssistantTool {
  /** As the model calls it: letters, digits, `_` and `-`, at most 64 (what OpenAI-compatible servers accept). */
  readonly name: string;
  readonly description?: string;
  /** JSON Schema of the arguments (an object schema). */
  readonly inputSchema: Record<string, unknown>;
  /**
   * Runs one call and resolves with what the model is to read. A failure rejects with an `Error` whose message the
   * model may read (the tool's own error text, or a generic one: never a credential or an internal detail). Once
   * `signal` aborts (the reply was stopped, or the call timed out) it rejects at once and its result is dropped.
   */
  execute(args: unknown, signal: AbortSignal): Promise<string>;
}

/** What a provider is asked to answer. */
export interface ReplyRequest {
  /** The system prompt, placeholders filled in; undefined when none is configured. */
  system?: string;
  /** The conversation before the reply, oldest first: its last `ASSISTANT_CONTEXT_MESSAGES`, empty ones left out. */
  turns: ChatTurn[];
  /** The tools the model may call (empty without MCP servers, or for a provider that does not call tools). */
  tools: readonly AssistantTool[];
}

/**
 * Where assistant text comes from. The gateway owns everything around it (the reply's row, deltas, saves, stop,
 * the reply's time and length bounds, tool activity and identity); a provider turns a request into text.
 *
 * `stream` yields the reply's text in chunks as they arrive and returns when the reply is complete. It stops as
 * soon as `signal` aborts (a stop from any tab, shutdown, the reply's time or length bound), rejecting or returning
 * as it likes: the gateway already knows why. Any other failure rejects with a `ProviderError` whose code is one
 * of `ProviderErrorCode` (anything else counts as `PROVIDER_ERROR`); its message goes to the gateway's log only.
 */
export interface AssistantProvider {
  /** Reported in the reply's metadata.model. */
  readonly model: string;
  /** Whether the provider calls tools; the gateway lists none for a provider that does not. */
  readonly callsTools?: boolean;
  stream(request: ReplyRequest, signal: AbortSignal): AsyncIterable<string>;
}

/** Why a provider failed; each becomes the reply's `metadata.error.code`. */
export const ProviderErrorCode = {
  /** The provider answered with an error, or something the gateway could not read. */
  PROVIDER_ERROR: 'PROVIDER_ERROR',
  /** The provider could not be reached. */
  PROVIDER_UNREACHABLE: 'PROVIDER_UNREACHABLE',
  /** A step (one model call) took longer than its bound. */
  PROVIDER_TIMEOUT: 'PROVIDER_TIMEOUT',
  /** The model was still calling tools when the reply reached its bound on steps. */
  MAX_STEPS: 'MAX_STEPS',
} as const;

export type ProviderErrorCode = (typeof ProviderErrorCode)[keyof typeof ProviderErrorCode];

/** A provider failure; the message is the detail for the log, never shown to tabs. */
export class ProviderError extends Error {
  override name = 'ProviderError';
  readonly code: ProviderErrorCode;
  constructor(code: ProviderErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
