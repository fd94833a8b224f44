import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import {
  APICallError,
  dynamicTool,
  isStepCount,
  jsonSchema,
  streamText,
  ToolChoiceViolationError,
  type ModelMessage,
  type ToolSet,
} from 'ai';
import type { Logger } from '../observability/logger.ts';
import { BodyBoundError, boundedFetch, type BodyBounds } from './bounded-fetch.ts';
import { ProviderError, type AssistantProvider, type AssistantTool, type ChatTurn, type ReplyRequest } from './provider.ts';

export interface OpenAiOptions {
  baseUrl: string;
  apiKey?: string;
  model: string;
  /** Model calls per reply: each step is one call, and the tool calls it asks for (ASSISTANT_MAX_STEPS). */
  maxSteps: number;
  /** Bound on one step: the model call and the tool calls it asks for (ASSISTANT_STEP_TIMEOUT_MS). */
  stepTimeoutMs: number;
  log: Logger;
}

/**
 * What one model call may send back. A reply is capped in characters by the gateway, but an event stream carries
 * much more than its text (JSON around every token, tool arguments): these bound the bytes themselves.
 */
export const PROVIDER_BODY_BOUNDS: BodyBounds = { errorBodyBytes: 4096, bodyBytes: 16 * 1024 * 1024, lineBytes: 1024 * 1024 };

/** Tool calls of one step that run at once; a model asking for more has them run a few at a time. */
const TOOL_CALL_CONCURRENCY = 4;

/**
 * Any OpenAI-compatible chat completions server (OpenAI, Ollama, vLLM, llama.cpp), on the AI SDK: streamed text,
 * and the tool loop (model → tool calls → results → model) bounded by `maxSteps`.
 */
export function createOpenAiProvider(options: OpenAiOptions): AssistantProvider {
  const baseURL = options.baseUrl.replace(/\/+$/, '');
  return {
    model: options.model,
    callsTools: true,
    async *stream(request: ReplyRequest, signal: AbortSignal) {
      // Per reply: what the transport saw tells an unreachable server from one that answered badly.
      const transport = { reached: false };
      const fetch = boundedFetch(PROVIDER_BODY_BOUNDS, async (input, init) => {
        const response = await globalThis.fetch(input, init);
        transport.reached = true;
        return response;
      });
      const provider = createOpenAICompatible({ name: 'openai', baseURL, apiKey: options.apiKey, fetch });
      const steps = stepBound(options.maxSteps, request.tools.length > 0);

      const result = streamText({
        model: provider.chatModel(options.model),
        instructions: request.system,
        messages: modelMessages(request.turns),
        tools: request.tools.length ? toolSet(request.tools, steps, signal) : undefined,
        toolCallConcurrency: TOOL_CALL_CONCURRENCY,
        stopWhen: isStepCount(options.maxSteps),
        prepareStep: ({ stepNumber }) => steps.begin(stepNumber),
        // The gateway's own contract: one attempt, failed fast; the tabs' retry is a new message.
        maxRetries: 0,
        abortSignal: signal,
        timeout: { stepMs: options.stepTimeoutMs },
        // Errors are read from the stream below; the SDK would otherwise print them on the console.
        onError: () => undefined,
        onWarning: ({ warnings }) => options.log.debug({ warnings }, 'provider warnings'),
      });

      let step = -1;
      /** The step of the last text yielded; -1 before any. */
      let textStep = -1;
      try {
        for await (const part of result.fullStream) {
          switch (part.type) {
            case 'start-step':
              step++;
              break;
            case 'text-delta':
              if (!part.text) break;
              // The texts of two steps (before and after tool calls) are two paragraphs, not one run-on line.
              if (textStep >= 0 && textStep !== step) yield '\n\n';
              textStep = step;
              yield part.text;
              break;
            case 'error':
              throw classify(part.error, transport, steps);
            case 'abort':
              if (signal.aborted) return;
              // Not the gateway's signal: the SDK's step bound fired.
              throw new ProviderError('PROVIDER_TIMEOUT', part.reason ?? `a step took longer than ${options.stepTimeoutMs} ms`);
            case 'finish':
              if (part.finishReason === 'tool-calls' && part.stoppedBy === 'stop-condition') {
                throw new ProviderError('MAX_STEPS', `the model still called tools after ${options.maxSteps} steps`);
              }
              break;
          }
        }
      } catch (err) {
        if (signal.aborted || err instanceof ProviderError) throw err;
        throw classify(err, transport, steps);
      }
    },
  };
}

/**
 * The step bound, kept by the provider because steps are its loop: the last step is asked for text only
 * (`toolChoice: none`). A model that calls tools there anyway ends the reply with MAX_STEPS (the SDK refuses the
 * response), and its calls are not run: their results could never reach it, so running them would only act on
 * the user's data for nothing (`execute` refuses them too, should a response get that far).
 */
function stepBound(maxSteps: number, hasTools: boolean) {
  let current = 0;
  return {
    begin(stepNumber: number) {
      current = stepNumber;
      return hasTools && stepNumber === maxSteps - 1 ? { toolChoice: 'none' as const } : undefined;
    },
    get last() {
      return current >= maxSteps - 1;
    },
  };
}

function toolSet(tools: readonly AssistantTool[], steps: ReturnType<typeof stepBound>, replySignal: AbortSignal): ToolSet {
  return Object.fromEntries(
    tools.map((t) => [
      t.name,
      dynamicTool({
        description: t.description,
        inputSchema: jsonSchema(t.inputSchema),
        execute: (input, { abortSignal }) => {
          if (steps.last) return Promise.reject(new Error('no more tool calls in this reply: answer with what you have'));
          return t.execute(input, abortSignal ?? replySignal);
        },
      }),
    ]),
  );
}

/** The conversation as the model reads it. Stored system messages are not passed on: the system prompt is the gateway's alone. */
function modelMessages(turns: ChatTurn[]): ModelMessage[] {
  return turns.flatMap((t): ModelMessage[] => (t.role === 'system' ? [] : [{ role: t.role, content: t.content }]));
}

/** A failure of the model call, as a ProviderError: its code for the tabs, its detail for the log. */
function classify(err: unknown, transport: { reached: boolean }, steps: { last: boolean }): ProviderError {
  if (err instanceof ProviderError) return err;
  if (ToolChoiceViolationError.isInstance(err) && steps.last) {
    return new ProviderError('MAX_STEPS', `the model still called tools in its last step: ${err.message}`, { cause: err });
  }
  const e = err as Error;
  const bound = findCause(err, (c): c is BodyBoundError => c instanceof BodyBoundError);
  if (bound) return new ProviderError('PROVIDER_ERROR', bound.message, { cause: err });
  if (APICallError.isInstance(err)) {
    if (!transport.reached) return new ProviderError('PROVIDER_UNREACHABLE', err.message, { cause: err });
    const status = err.statusCode === undefined ? '' : `provider answered ${err.statusCode}: `;
    return new ProviderError('PROVIDER_ERROR', `${status}${err.message}`, { cause: err });
  }
  if (e?.name === 'TimeoutError') return new ProviderError('PROVIDER_TIMEOUT', e.message, { cause: err });
  return new ProviderError(transport.reached ? 'PROVIDER_ERROR' : 'PROVIDER_UNREACHABLE', e?.message ?? String(err), { cause: err });
}

function findCause<T>(err: unknown, match: (e: unknown) => e is T): T | undefined {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) if (match(e)) return e;
  return undefined;
}
