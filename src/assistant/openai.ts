import { ProviderError, type AssistantProvider, type ChatTurn } from './provider.ts';

export interface OpenAiOptions {
  baseUrl: string;
  apiKey?: string;
  model: string;
  /** Bound on the whole reply, first byte to last. */
  timeoutMs: number;
}

/**
 * Any OpenAI-compatible `/chat/completions` endpoint with `stream: true` (OpenAI, Ollama, vLLM, llama.cpp):
 * reads the server-sent events and yields each `choices[0].delta.content`.
 */
export function createOpenAiProvider(options: OpenAiOptions): AssistantProvider {
  const url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  return {
    model: options.model,
    async *stream(turns: ChatTurn[], signal: AbortSignal) {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'text/event-stream',
          ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
        },
        body: JSON.stringify({ model: options.model, stream: true, messages: turns }),
        signal: AbortSignal.any([signal, AbortSignal.timeout(options.timeoutMs)]),
      }).catch((err: Error) => {
        if (signal.aborted) throw err;
        throw new ProviderError(err.name === 'TimeoutError' ? 'PROVIDER_TIMEOUT' : 'PROVIDER_UNREACHABLE', err.message);
      });
      if (!response.ok || !response.body) {
        const detail = await response.text().catch(() => '');
        throw new ProviderError('PROVIDER_ERROR', `provider answered ${response.status}: ${detail.slice(0, 200)}`);
      }
      try {
        for await (const data of serverSentData(response.body)) {
          if (data === '[DONE]') return;
          const text = parseDelta(data);
          if (text) yield text;
        }
      } catch (err) {
        if (signal.aborted) throw err;
        const e = err as Error;
        throw new ProviderError(e.name === 'TimeoutError' ? 'PROVIDER_TIMEOUT' : 'PROVIDER_ERROR', e.message);
      }
    },
  };
}

function parseDelta(data: string): string | undefined {
  let chunk: { choices?: { delta?: { content?: unknown } }[]; error?: { message?: string } };
  try {
    chunk = JSON.parse(data);
  } catch {
    throw new ProviderError('PROVIDER_ERROR', 'provider sent an event that is not JSON');
  }
  if (chunk.error) throw new ProviderError('PROVIDER_ERROR', chunk.error.message ?? 'provider error');
  const content = chunk.choices?.[0]?.delta?.content;
  return typeof content === 'string' ? content : undefined;
}

/** The `data:` payloads of a text/event-stream body, one per event. */
async function* serverSentData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  for await (const bytes of body) {
    buffer += decoder.decode(bytes, { stream: true });
    for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
      const line = buffer.slice(0, newline).replace(/\r$/, '');
      buffer = buffer.slice(newline + 1);
      if (line === '') {
        if (data.length) yield data.join('\n');
        data = [];
      } else if (line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
      }
    }
  }
  if (data.length) yield data.join('\n');
}
