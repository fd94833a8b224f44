// One command for the whole example: the app's backend, and beside it a gateway that trusts its tokens.
//   npm start -w examples/express-backend          (then open the URL it prints)
// Environment: PORT (4100), JWT_SECRET (made up when unset), GATEWAY_URL (a gateway already running with the same
// JWT_SECRET, issuer and audience; unset: one is started here), GATEWAY_PORT, DATABASE_URL (for that gateway).
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startLocalGateway } from '../../shared/local-gateway.ts';
import { createApp } from './app.ts';

const secret = process.env.JWT_SECRET ?? randomBytes(48).toString('base64url');
const issuer = 'express-backend-example';
const audience = 'chat-gateway';
let gatewayUrl = '';

const app = createApp({ secret, issuer, audience, tokenTtlS: 600, gatewayUrl: () => gatewayUrl });
const server = app.listen(Number(process.env.PORT ?? 4100), '127.0.0.1');
await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

// The gateway's side of the contract: the same secret, the issuer and audience it checks, and this app's page
// among the origins allowed to open sockets.
const gateway = await startLocalGateway(
  { JWT_SECRET: secret, JWT_ISSUER: issuer, JWT_AUDIENCE: audience, CORS_ORIGINS: origin },
  fileURLToPath(new URL('../.data/gateway', import.meta.url)),
);
gatewayUrl = gateway.url;
console.log(`app: ${origin}\ngateway: ${gateway.url}\nready: open ${origin}, sign in with any name, chat`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    server.close();
    server.closeAllConnections();
    await gateway.close();
    process.exit(0);
  });
}
