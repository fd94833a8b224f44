import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode as McpErrorCode, McpError, type Tool } from '@modelcontextprotocol/sdk/types.js';
import jwt from 'jsonwebtoken';
import type { Logger } from '../observability/logger.ts';
import { waitAtMost } from '../shared/time-bounds.ts';
import { boundedFetch, type BodyBounds } from './bounded-fetch.ts';
import type { AssistantTool } from './provider.ts';
import { ToolFailure } from './tool-calls.ts';

/** One entry of MCP_SERVERS. */
export interface McpServer {
  /** The server's name: the `aud` of the tokens minted for it. */
  name: string;
  /** Its Streamable HTTP endpoint, e.g. `http://todo-mcp:4000/mcp`. */
  url: string;
}

export interface McpToolsOptions {
  servers: McpServer[];
  /** The HS256 secret shared with the servers (MCP_TOKEN_SECRET). */
  tokenSecret: string;
  /** How long a server's tool list is used before it is read again (MCP_TOOLS_CACHE_MS). */
  listTtlMs: number;
  /** The bound on one call (ASSISTANT_TOOL_TIMEOUT_MS); the reply enforces it too, whatever the tool. */
  callTimeoutMs: number;
  log: Logger;
}

/** The identity contract with MCP servers (examples/todo-mcp verifies exactly this). */
export const MCP_TOKEN_ISSUER = 'chat-gateway';
/** A token is minted per request to a server: it needs to live only as long as that request. */
export const MCP_TOKEN_LIFETIME_S = 60;

/** Listing is on the way to a reply's first token: a server that does not answer is left out of that reply quickly. */
const LIST_TIMEOUT_MS = 5_000;
/** After a failed listing, the server's tools are not asked for again before this (replies go on without them). */
const LIST_RETRY_MS = 10_000;
const LIST_PAGES = 10;
/** OpenAI accepts at most 128 tools in one request. */
const MAX_TOOLS = 128;
/** What OpenAI-compatible servers accept as a function name. */
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** A tool's answer is read by the model: past this, it is cut (and the model told so). */
export const TOOL_RESULT_CHARS = 20_000;
const MCP_BODY_BOUNDS: BodyBounds = { errorBodyBytes: 4096, bodyBytes: 1024 * 1024, lineBytes: 1024 * 1024 };
/** A stateful server's session is ended politely, but not waited for past this. */
const END_SESSION_MS = 1_000;

interface Listing {
  tools: Tool[];
  freshUntil: number;
  retryAt: number;
  inflight?: Promise<Tool[]>;
}

/**
 * Tools over MCP (Streamable HTTP, the official SDK's client), each call made on behalf of one user: every HTTP
 * request to a server carries `Authorization: Bearer` with a token minted for it (HS256, `sub` the user, `aud` the
 * server's name, `iss` chat-gateway, 60 s to live). The token lives only in the request's headers: the model sees
 * tool names, descriptions, arguments and results, never a credential, and no tool takes a user id from it.
 */
export function createMcpTools(o: McpToolsOptions) {
  const listings = new Map<string, Listing>();

  function mint(userId: string, server: McpServer): string {
    return jwt.sign({ sub: userId, aud: server.name, iss: MCP_TOKEN_ISSUER }, o.tokenSecret, {
      algorithm: 'HS256',
      expiresIn: MCP_TOKEN_LIFETIME_S,
    });
  }

  /** A fetch bound to one user and one server: the user cannot change between two requests of one session. */
  function fetchAs(userId: string, server: McpServer) {
    return boundedFetch(MCP_BODY_BOUNDS, (input, init) => {
      const headers = new Headers(init?.headers);
      headers.set('authorization', `Bearer ${mint(userId, server)}`);
      return fetch(input, { ...init, headers });
    });
  }

  /** One MCP session for one user: connect (initialize), do `work`, end it. */
  async function session<T>(server: McpServer, userId: string, signal: AbortSignal, work: (client: Client) => Promise<T>): Promise<T> {
    const client = new Client({ name: 'chat-gateway', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(server.url), { fetch: fetchAs(userId, server) });
    try {
      await client.connect(transport, { signal, timeout: o.callTimeoutMs });
      return await work(client);
    } finally {
      if (transport.sessionId) await waitAtMost(transport.terminateSession(), END_SESSION_MS);
      // Also aborts a request still in flight (a stopped or timed-out call).
      await client.close().catch(() => undefined);
    }
  }

  async function list(server: McpServer, userId: string): Promise<Tool[]> {
    const tools: Tool[] = [];
    await session(server, userId, AbortSignal.timeout(LIST_TIMEOUT_MS), async (client) => {
      let cursor: string | undefined;
      for (let page = 0; page < LIST_PAGES; page++) {
        const answer = await client.listTools(cursor ? { cursor } : undefined, { signal: AbortSignal.timeout(LIST_TIMEOUT_MS) });
        tools.push(...answer.tools);
        cursor = answer.nextCursor;
        if (!cursor || tools.length >= MAX_TOOLS) break;
      }
    });
    return tools;
  }

  function refresh(server: McpServer, userId: string): Promise<Tool[]> {
    const listing = listings.get(server.name) ?? { tools: [], freshUntil: 0, retryAt: 0 };
    listings.set(server.name, listing);
    listing.inflight ??= list(server, userId)
      .then((tools) => {
        Object.assign(listing, { tools, freshUntil: Date.now() + o.listTtlMs, retryAt: 0 });
        return tools;
      })
      .catch((err: Error) => {
        o.log.warn({ server: server.name, err: describe(err) }, 'could not list the tools of an MCP server; replies go on without them');
        listing.retryAt = Date.now() + LIST_RETRY_MS;
        return listing.tools;
      })
      .finally(() => {
        listing.inflight = undefined;
      });
    return listing.inflight;
  }

  /**
   * A server's tools: the cached list while fresh; a stale list at once while it is read again in the background;
   * with no list yet, waits for one (within LIST_TIMEOUT_MS). Read on behalf of the user who needs it.
   */
  async function toolsOf(server: McpServer, userId: string): Promise<Tool[]> {
    const listing = listings.get(server.name);
    const now = Date.now();
    if (listing && now < listing.freshUntil) return listing.tools;
    const retryDue = !listing || now >= listing.retryAt;
    if (listing?.tools.length) {
      if (retryDue) void refresh(server, userId);
      return listing.tools;
    }
    return retryDue ? refresh(server, userId) : (listing?.inflight ?? []);
  }

  async function call(server: McpServer, userId: string, name: string, args: unknown, signal: AbortSignal): Promise<string> {
    // The SDK's result type also covers the pre-2024 `toolResult` form; only content and isError are read.
    let result: Record<string, unknown>;
    try {
      result = await session(server, userId, signal, (client) =>
        client.callTool({ name, arguments: (args ?? {}) as Record<string, unknown> }, undefined, { signal, timeout: o.callTimeoutMs }),
      );
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw failureOf(err as Error);
    }
    const text = resultText(result);
    if (result.isError)
      throw new ToolFailure('TOOL_ERROR', text || 'the tool failed', `the tool answered with an error: ${text.slice(0, 200)}`);
    return text;
  }

  /** The tools a reply to `userId` may call, every call bound to that user. A server that cannot list them is left out. */
  async function toolsFor(userId: string): Promise<AssistantTool[]> {
    const lists = await Promise.all(o.servers.map(async (server) => ({ server, tools: await toolsOf(server, userId) })));
    const offered = new Map<string, AssistantTool>();
    for (const { server, tools } of lists) {
      for (const tool of tools) {
        if (!TOOL_NAME.test(tool.name) || offered.has(tool.name) || offered.size >= MAX_TOOLS) continue;
        offered.set(tool.name, {
          name: tool.name,
          description: tool.description,
          inputSchema: tool.inputSchema as Record<string, unknown>,
          execute: (args, signal) => call(server, userId, tool.name, args, signal),
        });
      }
    }
    return [...offered.values()];
  }

  return { toolsFor };
}

export type McpTools = ReturnType<typeof createMcpTools>;

/** The text of a result, as the model reads it: its text parts (other kinds named only), cut at TOOL_RESULT_CHARS. */
function resultText(result: Record<string, unknown>): string {
  const parts = Array.isArray(result.content) ? (result.content as { type?: string; text?: unknown }[]) : [];
  let text = parts.map((p) => (p.type === 'text' && typeof p.text === 'string' ? p.text : `[${p.type ?? 'content'}]`)).join('\n');
  if (!text && result.structuredContent !== undefined) text = JSON.stringify(result.structuredContent);
  return text.length > TOOL_RESULT_CHARS
    ? `${text.slice(0, TOOL_RESULT_CHARS)}\n[cut: the result was longer than ${TOOL_RESULT_CHARS} characters]`
    : text;
}

/** A failed call as the model and the tabs see it; the server's own words go to the log. */
function failureOf(err: Error): ToolFailure {
  const detail = describe(err);
  if (err instanceof McpError && err.code === McpErrorCode.RequestTimeout) {
    return new ToolFailure('TOOL_TIMEOUT', 'the tool did not answer in time', detail);
  }
  if (err instanceof StreamableHTTPError || err instanceof TypeError || (err as { name?: string }).name === 'UnauthorizedError') {
    return new ToolFailure('TOOL_UNAVAILABLE', 'the tool is unavailable right now', detail);
  }
  return new ToolFailure('TOOL_ERROR', 'the tool failed', detail);
}

function describe(err: Error): string {
  const cause = (err as { cause?: { message?: string } }).cause?.message;
  return cause ? `${err.message} (${cause})` : err.message;
}
