/**
 * What the widget tells its user, in words: refused sends, failed commands, the connection's state.
 * Pure functions, so the wording lives in one place.
 */
import { ChatError, type ConnectionStatus, type ToolCallDto } from '../sdk/index.ts';

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

/** The example todo server's tools, as a person would say what the assistant did: running, done, failed. */
const TOOL_WORDS: Record<string, readonly [string, string, string]> = {
  add_task: ['Adding a task…', 'Added a task', 'Could not add a task'],
  list_tasks: ['Looking at your tasks…', 'Looked at your tasks', 'Could not look at your tasks'],
  complete_task: ['Completing a task…', 'Completed a task', 'Could not complete a task'],
  update_task: ['Updating a task…', 'Updated a task', 'Could not update a task'],
  delete_task: ['Deleting a task…', 'Deleted a task', 'Could not delete a task'],
};

/** A tool call's chip: "Added a task" for the todo tools, "Used <name>" for any other. */
export function toolLabel(call: ToolCallDto): string {
  const [running, done, failed] = TOOL_WORDS[call.name] ?? [`Using ${call.name}…`, `Used ${call.name}`, `${call.name} failed`];
  if (call.status === 'running') return running;
  return call.status === 'complete' ? done : failed;
}

/** Why a tool call failed, for the chip's tooltip. */
export function toolFailure(code: string | null): string {
  switch (code) {
    case 'TOOL_TIMEOUT':
      return 'The tool took too long to answer.';
    case 'TOOL_UNAVAILABLE':
      return 'The tool could not be reached.';
    case 'STOPPED':
      return 'The reply was stopped during this call.';
    case 'INTERRUPTED':
      return 'The reply was interrupted during this call.';
    default:
      return 'The tool reported an error.';
  }
}

const timeOnly = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const dateAndTime = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
const fullDate = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

/**
 * A message's time as shown beside it, in the user's locale (the browser's): the time for today's messages, the
 * date too for older ones; `full` for its tooltip.
 */
export function timeLabel(iso: string, now = new Date()): { short: string; full: string } {
  const at = new Date(iso);
  const today = at.toDateString() === now.toDateString();
  return { short: (today ? timeOnly : dateAndTime).format(at), full: fullDate.format(at) };
}
