/**
 * fetch with bounds on what a remote server can make the gateway hold: an LLM provider or an MCP server that
 * misbehaves (a line that never ends, an endless body, a huge error page) costs a bounded amount of memory, and
 * fails the one call instead of the node.
 */
export interface BodyBounds {
  /** Bytes of an error answer (status outside 200–299) that are read; the rest is dropped unread. */
  errorBodyBytes: number;
  /** Bytes of a successful body, in all. */
  bodyBytes: number;
  /** Bytes between two line feeds of a successful body (readers of event streams buffer a line whole). */
  lineBytes: number;
}

/** A body went past one of its bounds; the call fails with this. */
export class BodyBoundError extends Error {
  override name = 'BodyBoundError';
}

export type Fetch = typeof fetch;

/** Wraps `base` (global fetch by default) so that every response it returns is read within `bounds`. */
export function boundedFetch(bounds: BodyBounds, base: Fetch = fetch): Fetch {
  return async (input, init) => {
    const response = await base(input, init);
    if (!response.body) return response;
    if (!response.ok) return new Response(await readAtMost(response.body, bounds.errorBodyBytes), copyOf(response));
    return new Response(response.body.pipeThrough(limiter(bounds)), copyOf(response));
  };
}

function copyOf(response: Response): ResponseInit {
  const headers = new Headers(response.headers);
  // The body handed on is already decoded, and may be shorter than the original.
  headers.delete('content-length');
  headers.delete('content-encoding');
  return { status: response.status, statusText: response.statusText, headers };
}

/** The first `max` bytes of a body, as text; the rest is cancelled (the connection is not kept reading). */
async function readAtMost(body: ReadableStream<Uint8Array>, max: number): Promise<string> {
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < max) {
      const { done, value } = await reader.read();
      if (done) break;
      const part = value.subarray(0, max - size);
      parts.push(part);
      size += part.byteLength;
    }
  } catch {
    // What arrived before the failure is still worth logging.
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return new TextDecoder().decode(Buffer.concat(parts));
}

function limiter({ bodyBytes, lineBytes }: BodyBounds): TransformStream<Uint8Array, Uint8Array> {
  let total = 0;
  let line = 0;
  return new TransformStream({
    transform(chunk, controller) {
      total += chunk.byteLength;
      if (total > bodyBytes) throw new BodyBoundError(`response body over ${bodyBytes} bytes`);
      const lastFeed = chunk.lastIndexOf(0x0a);
      line = lastFeed < 0 ? line + chunk.byteLength : chunk.byteLength - lastFeed - 1;
      if (line > lineBytes) throw new BodyBoundError(`response line over ${lineBytes} bytes`);
      controller.enqueue(chunk);
    },
  });
}
