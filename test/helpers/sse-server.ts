// A local OpenAI-compatible `POST /v1/chat/completions` server streaming server-sent events, on 127.0.0.1 and a
// free port, for testing ASSISTANT=openai end to end: the scripted model streams text, and tool calls the way
// OpenAI streams them (`delta.tool_calls` pieces, then finish_reason `tool_calls`). Each request is recorded
// (body, headers) with a promise saying how its connection ended: after the whole stream, or closed early by the
// client (an aborted fetch). A script given as a function sees each request's body, so a test can answer a
// request that carries tool results differently from the first one of a reply.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SseScript {
  /** Non-200: answer with this status and `errorBody` instead of a stream. */
  status?: number;
  errorBody?: string;
  /** Text chunks, each sent as one `choices[0].delta.content` event. */
  chunks?: string[];
  /** Wait before each chunk (default 0). */
  delayMs?: number;
  /** Wait before the first chunk (default delayMs). */
  firstDelayMs?: number;
  /** Send `data: [DONE]` at the end (default true). */
  done?: boolean;
  /** After the chunks, send this error event (`data: {"error":{"message":…}}`) and end. */
  errorEvent?: string;
  /** Destroy the connection (no end, no [DONE]) after this many chunks. */
  dropAfter?: number;
  /**
   * After the chunks, the model calls these tools: each streamed as OpenAI does (a first `tool_calls` delta with
   * the call's index, id and name, then its arguments in pieces), and the stream ends with finish_reason
   * `tool_calls`. `arguments` is JSON-encoded unless it is a string already (a string lets a test send malformed
   * arguments).
   */
  toolCalls?: ScriptedToolCall[];
  /** Bytes of `data:` padding sent as one line before anything else (a provider that never ends a line). */
  hugeLineBytes?: number;
}

export interface ScriptedToolCall {
  name: string;
  arguments?: unknown;
  /** Default `call_<request>_<index>`. */
  id?: string;
}

/** The OpenAI-format messages of a request body that carry tool results (`role: 'tool'`). */
export function toolResults(body: any): { tool_call_id: string; content: string }[] {
  return (body?.messages ?? []).filter((m: { role?: string }) => m.role === 'tool');
}

export interface SseRequest {
  body: any;
  headers: IncomingMessage['headers'];
  /** Chunks written before the end. */
  written: number;
  /** Resolves when the exchange is over: 'completed' (the server ended the stream) or 'aborted' (client closed first). */
  ended: Promise<'completed' | 'aborted'>;
}

export interface SseServer {
  /** For OPENAI_BASE_URL: `http://127.0.0.1:<port>/v1` */
  baseUrl: string;
  requests: SseRequest[];
  /** What to answer the next requests with (by default: 'Hello', ' world', '!'). */
  setScript(script: SseScript | ((body: any, index: number) => SseScript)): void;
  /** Resolves with the request at `index` once it has arrived. */
  request(index: number, timeoutMs?: number): Promise<SseRequest>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startSseServer(): Promise<SseServer> {
  let script: (body: any, index: number) => SseScript = () => ({ chunks: ['Hello', ' world', '!'] });
  const requests: SseRequest[] = [];
  const arrivals = new Set<() => void>();

  async function handle(req: IncomingMessage, res: ServerResponse) {
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'not found' } }));
      return;
    }
    let raw = '';
    for await (const chunk of req) raw += chunk;
    let body: any;
    try {
      body = JSON.parse(raw);
    } catch {
      body = raw;
    }
    let resolveEnded!: (how: 'completed' | 'aborted') => void;
    const record: SseRequest = { body, headers: req.headers, written: 0, ended: new Promise((r) => (resolveEnded = r)) };
    const index = requests.push(record) - 1;
    for (const l of [...arrivals]) l();
    res.on('close', () => resolveEnded(res.writableFinished ? 'completed' : 'aborted'));

    const s = script(body, index);
    if (s.status && s.status !== 200) {
      res
        .writeHead(s.status, { 'content-type': 'application/json' })
        .end(s.errorBody ?? JSON.stringify({ error: { message: 'upstream failure' } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const id = `chatcmpl-${index}`;
    const event = (delta: Record<string, unknown>, finish: string | null = null) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', model: body?.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    if (s.hugeLineBytes) {
      // Written in pieces, never a newline: a reader that buffers lines without a bound keeps all of it.
      for (let sent = 0; sent < s.hugeLineBytes && !res.destroyed; sent += 65_536) {
        if (!res.write('x'.repeat(Math.min(65_536, s.hugeLineBytes - sent)))) await new Promise((r) => res.once('drain', r));
      }
      if (!res.destroyed) res.end();
      return;
    }
    res.write(event({ role: 'assistant', content: '' }));
    const chunks = s.chunks ?? [];
    for (let i = 0; i < chunks.length; i++) {
      if (s.dropAfter !== undefined && i >= s.dropAfter) {
        res.destroy();
        return;
      }
      const wait = i === 0 ? (s.firstDelayMs ?? s.delayMs ?? 0) : (s.delayMs ?? 0);
      if (wait > 0) await sleep(wait);
      if (res.destroyed) return;
      res.write(event({ content: chunks[i] }));
      record.written++;
    }
    if (res.destroyed) return;
    if (s.errorEvent !== undefined) {
      res.end(`data: ${JSON.stringify({ error: { message: s.errorEvent, type: 'server_error' } })}\n\n`);
      return;
    }
    if (s.toolCalls?.length) {
      for (const [i, call] of s.toolCalls.entries()) {
        const args = typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments ?? {});
        const id = call.id ?? `call_${index}_${i}`;
        res.write(event({ tool_calls: [{ index: i, id, type: 'function', function: { name: call.name, arguments: '' } }] }));
        // The arguments in two pieces, as a real model streams them token by token.
        const half = Math.ceil(args.length / 2);
        for (const piece of [args.slice(0, half), args.slice(half)]) {
          if (piece) res.write(event({ tool_calls: [{ index: i, function: { arguments: piece } }] }));
        }
      }
      res.write(event({}, 'tool_calls'));
    } else {
      res.write(event({}, 'stop'));
    }
    if (s.done !== false) res.write('data: [DONE]\n\n');
    res.end();
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    setScript(s) {
      script = typeof s === 'function' ? s : () => s;
    },
    request(index, timeoutMs = 20_000) {
      if (requests[index]) return Promise.resolve(requests[index]);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          arrivals.delete(listener);
          reject(new Error(`SSE server: request #${index} did not arrive`));
        }, timeoutMs);
        const listener = () => {
          if (!requests[index]) return;
          clearTimeout(timer);
          arrivals.delete(listener);
          resolve(requests[index]);
        };
        arrivals.add(listener);
      });
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
