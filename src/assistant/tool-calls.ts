import type { ToolCallDto } from '../shared/events.ts';

/** How many calls a reply's `metadata.toolCalls` keeps: the last ones (a tab shows recent activity, not a log). */
export const TOOL_CALLS_KEPT = 20;

/** Why a tool call failed: its `ToolCallDto.error`. */
export const ToolCallError = {
  /** The tool answered with an error (the model is given its text), or its answer could not be read. */
  TOOL_ERROR: 'TOOL_ERROR',
  /** No answer within ASSISTANT_TOOL_TIMEOUT_MS. */
  TOOL_TIMEOUT: 'TOOL_TIMEOUT',
  /** The tool's server could not be reached, or refused the gateway. */
  TOOL_UNAVAILABLE: 'TOOL_UNAVAILABLE',
  /** The reply was stopped while the call ran; its result, if any, was not given to the model. */
  STOPPED: 'STOPPED',
  /** The reply ended otherwise while the call ran (shutdown, the reply's time or length bound, its node died). */
  INTERRUPTED: 'INTERRUPTED',
} as const;

export type ToolCallError = (typeof ToolCallError)[keyof typeof ToolCallError];

/**
 * The tool calls of one reply, as every tab sees them: the last TOOL_CALLS_KEPT calls (no arguments, no results:
 * those may hold what only the tool and the model should see) and the names of every call, in order.
 */
export class ToolCalls {
  private kept: ToolCallDto[] = [];
  private readonly used: string[] = [];
  /** The calls still running, as they started, with when (a monotonic clock, for durations). */
  private readonly running = new Map<string, { call: ToolCallDto; began: number }>();
  /** Moves with every change, so the reply knows its saved metadata is behind. */
  version = 0;

  get count(): number {
    return this.used.length;
  }

  start(name: string): ToolCallDto {
    const call: ToolCallDto = {
      id: `call-${this.used.length + 1}`,
      name,
      status: 'running',
      startedAt: new Date().toISOString(),
      durationMs: null,
      error: null,
    };
    this.used.push(name);
    this.running.set(call.id, { call, began: performance.now() });
    this.put(call);
    return call;
  }

  /** Ends a running call; undefined when it had already ended (a stop settled it first). */
  end(id: string, error?: ToolCallError): ToolCallDto | undefined {
    const started = this.running.get(id);
    if (!started) return undefined;
    this.running.delete(id);
    const { call, began } = started;
    const ended: ToolCallDto = {
      ...call,
      status: error ? 'failed' : 'complete',
      durationMs: Math.round(performance.now() - began),
      error: error ?? null,
    };
    this.put(ended);
    return ended;
  }

  /** Ends every call still running (the reply is ending); returns them as ended. */
  settleRunning(error: ToolCallError): ToolCallDto[] {
    return [...this.running.keys()].flatMap((id) => this.end(id, error) ?? []);
  }

  /** What the reply's metadata holds of its tool calls; nothing for a reply that called none. */
  metadata(): { toolCalls: ToolCallDto[]; toolsUsed: string[] } | Record<string, never> {
    return this.used.length ? { toolCalls: [...this.kept], toolsUsed: [...this.used] } : {};
  }

  private put(call: ToolCallDto) {
    const at = this.kept.findIndex((c) => c.id === call.id);
    if (at >= 0) this.kept[at] = call;
    else this.kept = [...this.kept, call].slice(-TOOL_CALLS_KEPT);
    this.version++;
  }
}

/**
 * A reply ended by something other than its runner (a stop written straight to the database, the sweep of a dead
 * node's replies) may have calls its runner never saw end: they are shown as failed, not as running forever.
 */
export function settleStoredToolCalls(metadata: Record<string, unknown> | null, error: ToolCallError): Record<string, unknown> {
  const calls = metadata?.toolCalls;
  if (!Array.isArray(calls)) return { ...metadata };
  return {
    ...metadata,
    toolCalls: calls.map((c: ToolCallDto) => (c?.status === 'running' ? { ...c, status: 'failed', error } : c)),
  };
}

/**
 * A tool call that failed. Its message is what the model reads in the call's error result (the tool's own error
 * text, or a fixed one); `detail` is for the log only.
 */
export class ToolFailure extends Error {
  override name = 'ToolFailure';
  readonly code: ToolCallError;
  readonly detail: string;
  constructor(code: ToolCallError, modelText: string, detail = modelText) {
    super(modelText);
    this.code = code;
    this.detail = detail;
  }
}
