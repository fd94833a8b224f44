import { setTimeout as sleep } from 'node:timers/promises';
import type { AssistantProvider, ReplyRequest } from './provider.ts';

/** Deterministic reply for demos and tests: repeats the last user message, word by word, paced by delayMs. */
export function createEchoProvider(delayMs: number): AssistantProvider {
  return {
    model: 'echo',
    async *stream({ turns }: ReplyRequest, signal: AbortSignal) {
      const last = [...turns].reverse().find((t) => t.role === 'user');
      for (const token of echoTokens(last?.content ?? '')) {
        if (delayMs > 0) await sleep(delayMs, undefined, { signal });
        signal.throwIfAborted();
        yield token;
      }
    },
  };
}

/** The echo reply split into tokens (words with their trailing space); joined they give the whole reply. */
export function echoTokens(content: string): string[] {
  return `Echo: ${content}`.match(/\S+\s*|\s+/g) ?? [];
}
