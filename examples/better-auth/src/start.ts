// One command for the whole example: the app with Better Auth, and beside it a gateway on Better Auth's JWKS.
//   npm start -w examples/better-auth          (then open the URL it prints)
// Environment: PORT (4200), BETTER_AUTH_SECRET (made up when unset: sessions and keys then last only as long as the
// database file they are in), AUTH_DB (./.data/auth.sqlite), GATEWAY_URL (a gateway already running on this app's
// JWKS; unset: one is started here), GATEWAY_PORT, DATABASE_URL (for that gateway).
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalGateway } from '../../shared/local-gateway.ts';
import { createApp } from './app.ts';
import { CHAT_AUDIENCE, createAuth, migrate } from './auth.ts';

const databasePath = process.env.AUTH_DB ?? fileURLToPath(new URL('../.data/auth.sqlite', import.meta.url));
mkdirSync(dirname(databasePath), { recursive: true });

// The port first: Better Auth's baseURL (and so the tokens' issuer) is the address the app is served at.
let handle: ((req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void) | undefined;
const server = createServer((req, res) => (handle ? handle(req, res) : res.writeHead(503).end()));
await new Promise<void>((resolve, reject) => server.once('error', reject).listen(Number(process.env.PORT ?? 4200), '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const auth = createAuth({ baseURL: origin, secret: process.env.BETTER_AUTH_SECRET ?? randomBytes(32).toString('base64url'), databasePath });
await migrate(auth);
let gatewayUrl = '';
handle = createApp(auth, () => gatewayUrl);

// The gateway's side: Better Auth's JWKS, its issuer and the audience its tokens carry, this app's page allowed.
// Asking for the JWKS once first makes the plugin create its first key, so the gateway's first fetch finds it.
await auth.api.getJwks();
const gateway = await startLocalGateway(
  { JWT_JWKS_URL: `${origin}/api/auth/jwks`, JWT_ISSUER: origin, JWT_AUDIENCE: CHAT_AUDIENCE, CORS_ORIGINS: origin },
  fileURLToPath(new URL('../.data/gateway', import.meta.url)),
);
gatewayUrl = gateway.url;
console.log(`app: ${origin}\ngateway: ${gateway.url}\nready: open ${origin}, sign up, chat`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    server.close();
    server.closeAllConnections();
    await gateway.close();
    process.exit(0);
  });
}
