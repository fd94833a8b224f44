// One command for the whole example: builds the packages it uses and the page, then serves it with Vite's preview
// server, beside a gateway that trusts the stand-in backend's tokens.
//   npm start -w examples/react-chat          (then open the URL it prints, e.g. …/?user=alice in two tabs)
// Environment: PORT (5173), JWT_SECRET (made up when unset), GATEWAY_URL (a gateway already running with the same
// JWT_SECRET and this page's origin in its CORS_ORIGINS; unset: one is started here), GATEWAY_PORT, DATABASE_URL.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { build, preview } from 'vite';
import { startLocalGateway } from '../shared/local-gateway.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const port = Number(process.env.PORT ?? 5173);
process.env.JWT_SECRET ??= randomBytes(48).toString('base64url');

// The page imports @chat-gateway/react (and through it the SDK) as an app installed from npm would: their dist/.
const packages = spawnSync(process.execPath, [fileURLToPath(new URL('../../scripts/build-packages.ts', import.meta.url)), 'sdk', 'react'], {
  stdio: 'inherit',
});
if (packages.status !== 0) process.exit(1);
await build({ root: here, logLevel: 'warn' });

const server = await preview({ root: here, logLevel: 'warn', preview: { port, strictPort: true, host: '127.0.0.1' } });
const origin = `http://127.0.0.1:${port}`;
const gateway = await startLocalGateway(
  { JWT_SECRET: process.env.JWT_SECRET, CORS_ORIGINS: origin },
  fileURLToPath(new URL('.data/gateway', import.meta.url)),
);
process.env.CHAT_GATEWAY_URL = gateway.url;
console.log(`page: ${origin}\ngateway: ${gateway.url}\nready: open ${origin}/?user=alice (in two tabs, to see them agree)`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    await server.close();
    await gateway.close();
    process.exit(0);
  });
}
