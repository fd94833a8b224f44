// A tiny MCP server of the tests' own (Streamable HTTP, stateless, on the official SDK, in the test process), with
// tools the reference server has no reason to have: one that takes a while, one that always fails, one that never
// answers, one that says who called it. It checks tokens exactly as examples/todo-mcp does, and records every
// token and call, so a test can see which user each call acted for and when a call was abandoned.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import jwt from 'jsonwebtoken';
import { z } from 'zod';

export interface LabClaims {
  sub: string;
  aud: string;
  iss: string;
  exp: number;
  iat: number;
}

export interface LabCall {
  tool: string;
  sub: string;
  args: Record<string, unknown>;
  /** How the call's HTTP exchange ended: answered, or the client closed it first (a stopped or timed-out call). */
  ended: Promise<'answered' | 'closed'>;
}

export interface LabMcp {
  url: string;
  /** Every verified token's claims, in order; and the raw tokens (to prove they never reached the model). */
  claims: LabClaims[];
  tokens: string[];
  calls: LabCall[];
  /** Requests refused for their token. */
  refused: number;
  /** Resolves once the `n`-th call (from 1) of `tool` has arrived. */
  called(tool: string, n?: number): Promise<LabCall>;
  close(): Promise<void>;
}

export const LAB_TOOLS = ['lab_whoami', 'lab_slow', 'lab_fail', 'lab_hang'] as const;

export async function startLabMcp(o: { secret: string; audience?: string; slowMs?: number }): Promise<LabMcp> {
  const audience = o.audience ?? 'lab';
  const claims: LabClaims[] = [];
  const tokens: string[] = [];
  const calls: LabCall[] = [];
  const arrivals = new Set<() => void>();
  const sockets = new Set<import('node:net').Socket>();
  let refused = 0;

  function verify(req: IncomingMessage): LabClaims | undefined {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token) return undefined;
    try {
      const payload = jwt.verify(token, o.secret, { algorithms: ['HS256'], audience, issuer: 'chat-gateway' }) as LabClaims;
      tokens.push(token);
      claims.push(payload);
      return payload;
    } catch {
      return undefined;
    }
  }

  function serverFor(sub: string, ended: Promise<'answered' | 'closed'>) {
    const server = new McpServer({ name: 'lab', version: '0.0.0' });
    const record = (tool: string, args: Record<string, unknown>) => {
      calls.push({ tool, sub, args, ended });
      for (const l of [...arrivals]) l();
    };
    server.registerTool('lab_whoami', { description: 'Says which user the call acts for.', inputSchema: {} }, async () => {
      record('lab_whoami', {});
      return { content: [{ type: 'text', text: `you are ${sub}` }] };
    });
    server.registerTool(
      'lab_slow',
      { description: 'Takes a while, then answers done.', inputSchema: { label: z.string().optional() } },
      async (args) => {
        record('lab_slow', args);
        await new Promise((r) => setTimeout(r, o.slowMs ?? 5000));
        return { content: [{ type: 'text', text: 'done' }] };
      },
    );
    server.registerTool('lab_fail', { description: 'Always fails.', inputSchema: {} }, async () => {
      record('lab_fail', {});
      return { content: [{ type: 'text', text: 'the lab tool is broken today' }], isError: true };
    });
    server.registerTool('lab_hang', { description: 'Never answers.', inputSchema: {} }, async () => {
      record('lab_hang', {});
      return new Promise(() => undefined);
    });
    return server;
  }

  const http: Server = createServer(async (req, res) => {
    const who = verify(req);
    if (!who) {
      refused++;
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_token"}');
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const ended = new Promise<'answered' | 'closed'>((resolve) =>
      res.on('close', () => resolve(res.writableFinished ? 'answered' : 'closed')),
    );
    const server = serverFor(who.sub, ended);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, JSON.parse(raw));
  });
  http.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/mcp`,
    claims,
    tokens,
    calls,
    get refused() {
      return refused;
    },
    called(tool, n = 1) {
      const find = () => calls.filter((c) => c.tool === tool)[n - 1];
      const now = find();
      if (now) return Promise.resolve(now);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          arrivals.delete(listener);
          reject(new Error(`lab MCP: call #${n} of ${tool} did not arrive`));
        }, 20_000);
        const listener = () => {
          const found = find();
          if (!found) return;
          clearTimeout(timer);
          arrivals.delete(listener);
          resolve(found);
        };
        arrivals.add(listener);
      });
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => http.close(() => resolve()));
    },
  };
}
