// Composition root: database, schema, HTTP routes. main.ts reads the environment and calls it.
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import express, { type ErrorRequestHandler, type Response } from 'express';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { TodoMcpConfig } from './config.ts';
import { ensureSchema, openDatabase } from './database.ts';
import { tokenVerifier, userIdOf } from './identity.ts';
import type { Logger } from './log.ts';
import { TaskStore } from './tasks.ts';
import { createTodoServer } from './tools.ts';

export const MCP_PATH = '/mcp';
/** Tool arguments are a few short strings; nothing legitimate comes near this. */
const MAX_BODY = '64kb';

export interface TodoMcp {
  /** Resolves with the port actually bound (useful with port 0). */
  listen(port: number, host: string): Promise<number>;
  /** Stops accepting, lets requests in flight finish, then closes the database. */
  close(): Promise<void>;
}

function sendJsonRpcError(res: Response, status: number, code: number, message: string): void {
  res.status(status).json({ jsonrpc: '2.0', error: { code, message }, id: null });
}

export async function createTodoMcp(config: TodoMcpConfig, log: Logger): Promise<TodoMcp> {
  const sql = await openDatabase(config.database, (err) => log.error('database connection error', { err }));
  try {
    await ensureSchema(sql, config.database.schema);
  } catch (err) {
    await sql.close().catch(() => undefined);
    throw err;
  }
  const tasks = new TaskStore(sql, config.database.schema);

  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', async (_req, res) => {
    try {
      await sql.query('select 1');
      res.json({ status: 'ok' });
    } catch (err) {
      log.error('health check failed', { err });
      res.status(503).json({ status: 'unavailable' });
    }
  });

  // Authentication comes before the body is even parsed: nothing from an unauthenticated caller is read.
  // No Host-header (DNS rebinding) check: a browser page that rebinds a name to this server still has no
  // token, and every route that does anything requires one.
  const authenticated = requireBearerAuth({ verifier: tokenVerifier(config.token) });

  // Stateless Streamable HTTP, the SDK's documented pattern: a new server and transport for every POST.
  // That is also what binds the tools to this request's user and no other.
  app.post(MCP_PATH, authenticated, express.json({ limit: MAX_BODY }), async (req, res) => {
    const server = createTodoServer(tasks, userIdOf(req.auth), log);
    // No tool here streams progress or sends notifications, so one JSON answer per POST is all there is;
    // it also passes through proxies that buffer or cut event streams.
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } catch (err) {
      log.error('mcp request failed', { err });
      if (!res.headersSent) sendJsonRpcError(res, 500, -32603, 'Internal server error');
    }
  });
  // Stateless: there is no session to open an event stream on (GET) or to end (DELETE).
  app.all(MCP_PATH, authenticated, (_req, res) => {
    res.set('Allow', 'POST');
    sendJsonRpcError(res, 405, -32000, 'Method not allowed.');
  });

  // Malformed or oversized JSON: a JSON-RPC error instead of express's HTML page.
  const onError: ErrorRequestHandler = (err, _req, res, next) => {
    if (res.headersSent) return next(err);
    const status = typeof err?.status === 'number' ? err.status : 500;
    if (status === 413) return sendJsonRpcError(res, 413, -32600, 'Request body too large');
    if (status >= 400 && status < 500) return sendJsonRpcError(res, status, -32700, 'Parse error');
    log.error('request failed', { err });
    return sendJsonRpcError(res, 500, -32603, 'Internal server error');
  };
  app.use(onError);

  let httpServer: Server | undefined;
  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        const server = createServer(app);
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          httpServer = server;
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    async close() {
      if (httpServer) {
        const server = httpServer;
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      await sql.close();
    },
  };
}
