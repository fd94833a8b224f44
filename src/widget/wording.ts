/**
 * What the widget tells its user, in words: refused sends, failed commands, the connection's state.
 * Pure functions, so the wording lives in one place.
 */
import { ChatError, type ConnectionStatus } from '../sdk/index.ts';

/** Counts characters as the server does (code points, not UTF-16 units). */
export const charCount = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/**
 * The sentence shown when a command fails. `content` is the text of a refused send, to say by how much it is
 * over the limit.
 */
export function describeError(err: unknown, action: 'send' | 'other' = 'other', content?: string): string {
  if (!(err instanceof ChatError)) return 'Something went wrong. Please try again.';
  switch (err.code) {
    case 'RATE_LIMITED': {
      const s = Math.max(1, Math.ceil((err.retryAfterMs ?? 1000) / 1000));
      return `You are sending messages too fast. Please wait ${s} second${s === 1 ? '' : 's'} and try again.`;
    }
    case 'VALIDATION': {
      // The server names the limit in its message ("content: must be at most 10000 characters").
      const limit = /at most (\d+) characters/.exec(err.message)?.[1];
      if (limit && action === 'send') {
        const length = content === undefined ? '' : ` Yours has ${charCount(content).toLocaleString('en')}.`;
        return `Your message is too long: the limit is ${Number(limit).toLocaleString('en')} characters.${length}`;
      }
      if (/empty|white space/.test(err.message)) return 'An empty message cannot be sent.';
      return `The server refused this: ${err.message}`;
    }
    case 'TIMEOUT':
    case 'DISCONNECTED':
      return action === 'send'
        ? 'The chat server did not answer, so this may not have been sent. Your text is back in the box: check the conversation before sending it again.'
        : 'The chat server did not answer. Please try again.';
    case 'UNAVAILABLE':
      return 'The chat service is briefly unavailable. Please try again in a moment.';
    case 'NOT_FOUND':
      return 'This conversation no longer exists.';
    case 'UNAUTHORIZED':
    case 'TOKEN_EXPIRED':
      return 'Your chat session has expired. Reload the page to sign in again.';
    case 'TOO_MANY_CONNECTIONS':
      return 'Too many chat windows are open. Close one and try again.';
    default:
      return `Something went wrong (${err.code}). Please try again.`;
  }
}

/** The short label of the header's status pill. */
export function statusLabel(status: ConnectionStatus): string {
  switch (status) {
    case 'connected':
      return 'Online';
    case 'connecting':
      return 'Connecting…';
    case 'reconnecting':
      return 'Reconnecting…';
    case 'disconnected':
      return 'Offline';
  }
}
