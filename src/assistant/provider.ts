import type { MessageRole } from '../messages/message.entity.ts';

export interface ChatTurn {
  role: MessageRole;
  content: string;
}

/** Where assistant text comes from. `stream` yields text chunks as they arrive and stops when `signal` aborts. */
export interface AssistantProvider {
  /** Reported in the reply's metadata.model. */
  readonly model: string;
  stream(turns: ChatTurn[], signal: AbortSignal): AsyncIterable<string>;
}

/** A provider failure worth showing in the reply's metadata.error. */
export class ProviderError extends Error {
  override name = 'ProviderError';
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}
