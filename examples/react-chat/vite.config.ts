// Vite for the page, and a stand-in for the app's backend on the same server: /chat/config says where the gateway
// is, /chat/token signs a token for the user the page names. That stand-in trusts the page, so it is for trying the
// example only: a real backend mints tokens for the user its own session says is signed in (examples/express-backend),
// or the app's identity provider does (examples/better-auth).
import react from '@vitejs/plugin-react';
import jwt from 'jsonwebtoken';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { defineConfig, type Plugin } from 'vite';

function chatBackendStandIn(): Plugin {
  const handle = (req: IncomingMessage, res: ServerResponse, next: () => void) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, body: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
    // Set by start.ts; a `vite` dev server started by hand needs both in its environment.
    const secret = process.env.JWT_SECRET;
    const gatewayUrl = process.env.CHAT_GATEWAY_URL;
    if (url.pathname === '/chat/config') return send(200, { gatewayUrl });
    if (url.pathname !== '/chat/token') return next();
    const user = url.searchParams.get('user') ?? '';
    if (!secret || !/^[\w.-]{1,40}$/.test(user)) return send(400, { error: 'a user name of 1 to 40 letters, digits, . _ -' });
    send(200, { token: jwt.sign({}, secret, { algorithm: 'HS256', subject: user, expiresIn: 600 }) });
  };
  return {
    name: 'chat-backend-stand-in',
    configureServer: (server) => void server.middlewares.use(handle),
    configurePreviewServer: (server) => void server.middlewares.use(handle),
  };
}

export default defineConfig({
  plugins: [react(), chatBackendStandIn()],
  build: { outDir: 'dist', emptyOutDir: true },
});
