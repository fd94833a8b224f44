// examples/express-backend as `npm start` runs it: the app's backend and the gateway it starts beside itself (here on
// the test's PostgreSQL). A user signed in to the app gets a gateway token at /chat-token, and only then; the SDK
// connects with it and chats as that user, whose id is the app's, never anything the page says.
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChatClient, isFinal, type ChatClient, type MessageDto } from '../../src/sdk/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { killExamples, startExample, type RunningExample } from '../helpers/example-process.ts';

let db: TestDatabase;
let example: RunningExample;
let app: string;
let gateway: string;

beforeAll(async () => {
  db = await createTestDatabase();
  example = await startExample('express-backend', 'src/start.ts', { PORT: '0', GATEWAY_PORT: '0', DATABASE_URL: db.url });
  app = example.urls.app!;
  gateway = example.urls.gateway!;
});
afterAll(async () => {
  await example?.stop();
  killExamples();
  await db?.drop();
});

/** Signs in to the app with `name`; resolves with the session cookie. */
async function signIn(name: string): Promise<string> {
  const res = await fetch(`${app}/login`, { method: 'POST', body: new URLSearchParams({ name }), redirect: 'manual' });
  expect(res.status).toBe(303);
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('sid='));
  expect(cookie).toMatch(/HttpOnly/i);
  expect(cookie).toMatch(/SameSite=Lax/i);
  return cookie!.split(';')[0]!;
}

const chatToken = (cookie?: string) => fetch(`${app}/chat-token`, { headers: cookie ? { cookie } : {} });

describe('/chat-token', () => {
  it('answers 401 to a visitor who is not signed in, or whose session is unknown or ended', async () => {
    expect((await chatToken()).status).toBe(401);
    expect((await chatToken('sid=made-up')).status).toBe(401);
    const cookie = await signIn('carol');
    expect((await chatToken(cookie)).status).toBe(200);
    await fetch(`${app}/logout`, { method: 'POST', headers: { cookie }, redirect: 'manual' });
    expect((await chatToken(cookie)).status).toBe(401);
  });

  it('mints a short-lived HS256 token for the signed-in user, with the issuer and audience the gateway checks', async () => {
    const cookie = await signIn('alice');
    const res = await chatToken(cookie);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const { token } = (await res.json()) as { token: string };
    const decoded = jwt.decode(token, { complete: true }) as jwt.Jwt & { payload: jwt.JwtPayload };
    expect(decoded.header.alg).toBe('HS256');
    expect(decoded.payload).toMatchObject({ iss: 'express-backend-example', aud: 'chat-gateway', name: 'alice' });
    expect(decoded.payload.sub).toMatch(/^[0-9a-f-]{36}$/);
    expect(decoded.payload.exp! - decoded.payload.iat!).toBe(600);
    // The same user signing in again is the same user to the gateway.
    const again = (await (await chatToken(await signIn('alice'))).json()) as { token: string };
    expect(jwt.decode(again.token)?.sub).toBe(decoded.payload.sub);
  });
});

describe('the gateway started beside it', () => {
  const clients: ChatClient[] = [];
  afterAll(() => {
    for (const c of clients) c.close();
  });

  it('takes the tokens (not in demo mode), and each user chats as themselves', async () => {
    expect((await fetch(`${gateway}/api/demo/token`, { method: 'POST' })).status).toBe(404);
    const connect = (cookie: string) => {
      // As the page does: getToken asks the app's backend, with the session cookie the browser would send.
      const chat = createChatClient({
        url: gateway,
        getToken: async () => ((await (await chatToken(cookie)).json()) as { token: string }).token,
      });
      clients.push(chat);
      return chat;
    };
    const dave = connect(await signIn('dave'));
    const erin = connect(await signIn('erin'));
    const { conversation } = await dave.send({ content: 'hello from the express example' });
    const reply = await new Promise<MessageDto>((resolve) => dave.on('message', (m) => m.role === 'assistant' && isFinal(m) && resolve(m)));
    expect(reply).toMatchObject({ conversationId: conversation.id, status: 'complete', content: 'Echo: hello from the express example' });
    expect((await dave.listConversations()).conversations.map((c) => c.id)).toEqual([conversation.id]);
    expect((await erin.listConversations()).conversations).toEqual([]);
  });

  it("serves the app's page with the widget from the gateway, and the gateway lets that page's origin in", async () => {
    const page = await (await fetch(`${app}/`, { headers: { cookie: await signIn('frank') } })).text();
    expect(page).toContain(`<script type="module" src="${gateway}/widget/chat-widget.js"></script>`);
    expect(page).toContain(`<chat-widget server="${gateway}"`);
    expect((await fetch(`${gateway}/widget/chat-widget.js`)).status).toBe(200);
    // CORS_ORIGINS names the app: its preflight passes, another origin's does not.
    const preflight = (origin: string) =>
      fetch(`${gateway}/api/conversations`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
      });
    expect((await preflight(app)).status).toBe(204);
    expect((await preflight('http://127.0.0.1:1')).status).toBe(403);
  });

  it('stops with its gateway on SIGTERM', async () => {
    expect(await example.stop()).toBe(0);
    await expect(fetch(`${gateway}/healthz`)).rejects.toThrow();
  });
});
