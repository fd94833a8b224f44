// A small JSON client over global fetch: every call resolves with status, headers and the parsed body,
// whatever the status, so tests assert on what a client would really see.
import { expect } from 'vitest';

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  /** The body as received (before JSON parsing). */
  text: string;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** Sent as is instead of JSON.stringify(body): for malformed and oversized bodies. */
  raw?: string;
}

export function api(baseUrl: string, token?: string) {
  async function request<T = any>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
    if (token !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) {
      headers.authorization = `Bearer ${token}`;
    }
    let payload: string | undefined;
    if (opts.raw !== undefined) payload = opts.raw;
    else if (body !== undefined) payload = JSON.stringify(body);
    if (payload !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
      headers['content-type'] = 'application/json';
    }
    const res = await fetch(new URL(path, baseUrl), { method, headers, body: payload });
    const text = await res.text();
    let parsed: unknown;
    if (text && (res.headers.get('content-type') ?? '').includes('json')) parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  }
  return {
    request,
    get: <T = any>(path: string, opts?: RequestOptions) => request<T>('GET', path, undefined, opts),
    post: <T = any>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('POST', path, body, opts),
    patch: <T = any>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('PATCH', path, body, opts),
    delete: <T = any>(path: string, opts?: RequestOptions) => request<T>('DELETE', path, undefined, opts),
  };
}

export type Api = ReturnType<typeof api>;

/** Asserts the contract's error shape exactly: `{ error: { code, message } }` (retryAfterMs allowed), and the status. */
export function expectError(res: ApiResponse, status: number, code: string): void {
  expect({ status: res.status, code: res.body?.error?.code }, res.text).toEqual({ status, code });
  expect(Object.keys(res.body)).toEqual(['error']);
  expect(typeof res.body.error.message).toBe('string');
  expect(res.body.error.message.length).toBeGreaterThan(0);
  const extra = Object.keys(res.body.error).filter((k) => !['code', 'message', 'retryAfterMs'].includes(k));
  expect(extra).toEqual([]);
}

/** Creates a conversation over REST and returns it (asserting the 201). */
export async function createConversation(
  client: Api,
  title?: string | null,
): Promise<{ id: string; title: string | null; lastSeq: number; createdAt: string; updatedAt: string }> {
  const res = await client.post('/api/conversations', title === undefined ? {} : { title });
  expect(res.status, res.text).toBe(201);
  return res.body.conversation;
}

/** Posts a message over REST and returns it (asserting the 201). */
export async function postMessage(client: Api, conversationId: string, content: string, clientMessageId?: string) {
  const res = await client.post(
    `/api/conversations/${conversationId}/messages`,
    clientMessageId ? { content, clientMessageId } : { content },
  );
  expect(res.status, res.text).toBe(201);
  return res.body.message as {
    id: string;
    conversationId: string;
    seq: number;
    role: string;
    status: string;
    content: string;
    clientMessageId: string | null;
  };
}
