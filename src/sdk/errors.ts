import type { ErrorCode, WireError } from '../shared/errors.ts';

/**
 * The codes a {@link ChatError} carries: the gateway's own (`VALIDATION`, `NOT_FOUND`, `RATE_LIMITED`, …) plus
 * `DISCONNECTED`, the SDK's own, for a command whose socket went away before its acknowledgement (like `TIMEOUT`,
 * the outcome is unknown) or whose client was closed.
 *
 * @example
 * const retryable = (code: ChatErrorCode) => code === 'UNAVAILABLE' || code === 'TIMEOUT' || code === 'DISCONNECTED';
 */
export type ChatErrorCode = ErrorCode | 'DISCONNECTED';

/**
 * A command that failed: the gateway answered `{ ok: false, error }`, or no answer came in time (`TIMEOUT`), or the
 * connection went away first (`DISCONNECTED`).
 *
 * @example
 * try {
 *   await chat.send({ content: 'hi' });
 * } catch (err) {
 *   if (err instanceof ChatError && err.code === 'RATE_LIMITED') await sleep(err.retryAfterMs ?? 1000);
 * }
 */
export class ChatError extends Error {
  readonly code: ChatErrorCode;
  /** Set with `RATE_LIMITED`: how long to wait before trying again. */
  readonly retryAfterMs?: number;

  constructor(code: ChatErrorCode, message: string, options?: { retryAfterMs?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ChatError';
    this.code = code;
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }

  /**
   * Builds the error from a failed acknowledgement's `error`.
   *
   * @example
   * const ack = await socket.emitWithAck('history:get', { conversationId });
   * if (!ack.ok) throw ChatError.fromWire(ack.error);
   */
  static fromWire(error: WireError): ChatError {
    return new ChatError(error.code, error.message, { retryAfterMs: error.retryAfterMs });
  }

  /** True when the command may or may not have been applied (no answer came): safe to retry only if idempotent. */
  get outcomeUnknown(): boolean {
    return this.code === 'TIMEOUT' || this.code === 'DISCONNECTED';
  }
}

/** Maps what socket.io-client rejects `emitWithAck` with (its messages are its only contract) to a ChatError. */
export function fromSocketError(err: unknown, event: string, timeoutMs: number): ChatError {
  if (err instanceof ChatError) return err;
  const text = err instanceof Error ? err.message : String(err);
  if (/timed out/i.test(text)) {
    return new ChatError('TIMEOUT', `${event}: no acknowledgement within ${timeoutMs} ms`, { cause: err });
  }
  if (/disconnected/i.test(text)) {
    return new ChatError('DISCONNECTED', `${event}: disconnected before the acknowledgement`, { cause: err });
  }
  return new ChatError('INTERNAL', `${event}: ${text}`, { cause: err });
}
