// examples/better-auth as `npm start` runs it: Better Auth (its JWT plugin, Node's SQLite) and a gateway started
// beside it on Better Auth's JWKS (here on the test's PostgreSQL). A user who signs up gets an EdDSA token from
// /api/auth/token; the gateway verifies it on the JWKS, and the user chats as the id Better Auth gave them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChatClient, isFinal, type ChatClient, type MessageDto } from '../../src/sdk/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { killExamples, startExample, type RunningExample } from '../helpers/example-process.ts';

let db: TestDatabase;
let dir: string;
let example: RunningExample;
let app: string;
let gateway: string;

beforeAll(async () => {
  [db, dir] = await Promise.all([createTestDatabase(), mkdtemp(join(tmpdir(), 'better-auth-'))]);
  example = await startExample('better-auth', 'src/start.ts', {
    PORT: '0',
    GATEWAY_PORT: '0',
    DATABASE_URL: db.url,
    AUTH_DB: join(dir, 'auth.sqlite'),
    BETTER_AUTH_SECRET: 'a-test-secret-for-better-auth-of-enough-length',
  });
  app = example.urls.app!;
  gateway = example.urls.gateway!;
});
afterAll(async () => {
  await example?.stop();
  killExamples();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Signs up with Better Auth's own route, as the page does; resolves with the user's id and session cookie. */
async function signUp(name: string): Promise<{ id: string; cookie: string }> {
  const res = await fetch(`${app}/api/auth/sign-up/email`, {
    method: 'POST',
    // Better Auth refuses a browser's cross-site POST: the page's own origin, as a browser sends it.
    headers: { 'content-type': 'application/json', origin: app },
    body: JSON.stringify({ name, email: `${name}@example.com`, password: 'correct horse battery staple' }),
  });
  expect(res.status).toBe(200);
  const { user } = (await res.json()) as { user: { id: string } };
  return {
    id: user.id,
    cookie: res.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; '),
  };
}

async function tokenOf(cookie: string): Promise<string> {
  const res = await fetch(`${app}/api/auth/token`, { headers: { cookie } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

describe('Better Auth with its JWT plugin', () => {
  it('signs EdDSA (Ed25519) tokens whose sub is the user id, iss the app, aud the gateway, and nothing else of the user', async () => {
    const alice = await signUp('alice');
    const token = await tokenOf(alice.cookie);
    const { header, payload } = jwt.decode(token, { complete: true }) as jwt.Jwt & { payload: jwt.JwtPayload };
    const jwks = (await (await fetch(`${app}/api/auth/jwks`)).json()) as { keys: { kid: string; kty: string; crv: string }[] };
    expect(header).toMatchObject({ alg: 'EdDSA', kid: expect.any(String) });
    expect(jwks.keys).toContainEqual(expect.objectContaining({ kid: header.kid, kty: 'OKP', crv: 'Ed25519' }));
    expect(Object.keys(payload).sort()).toEqual(['aud', 'exp', 'iat', 'iss', 'sub']);
    expect(payload).toMatchObject({ sub: alice.id, iss: app, aud: 'chat-gateway' });
    expect((await fetch(`${app}/api/auth/token`)).status).toBe(401);
  });
});

describe('the gateway on its JWKS', () => {
  const clients: ChatClient[] = [];
  afterAll(() => {
    for (const c of clients) c.close();
  });

  it('is ready with the keys, and not in demo mode', async () => {
    const ready = (await (await fetch(`${gateway}/readyz`)).json()) as { checks: Record<string, string> };
    expect(ready.checks.jwks).toBe('ok');
    expect((await fetch(`${gateway}/api/demo/token`, { method: 'POST' })).status).toBe(404);
  });

  it('lets each user chat as the id Better Auth gave them, with tokens fetched from /api/auth/token', async () => {
    const [bob, carol] = await Promise.all([signUp('bob'), signUp('carol')]);
    const connect = (cookie: string) => {
      const chat = createChatClient({ url: gateway, getToken: () => tokenOf(cookie) });
      clients.push(chat);
      return chat;
    };
    const bobChat = connect(bob.cookie);
    const { conversation } = await bobChat.send({ content: 'hello from better auth' });
    const reply = await new Promise<MessageDto>((resolve) =>
      bobChat.on('message', (m) => m.role === 'assistant' && isFinal(m) && resolve(m)),
    );
    expect(reply).toMatchObject({ conversationId: conversation.id, status: 'complete', content: 'Echo: hello from better auth' });

    // The REST API knows the same user from the same kind of token; another user sees nothing of theirs.
    const list = async (cookie: string) => {
      const res = await fetch(`${gateway}/api/conversations`, { headers: { authorization: `Bearer ${await tokenOf(cookie)}` } });
      return ((await res.json()) as { conversations: { id: string }[] }).conversations.map((c) => c.id);
    };
    expect(await list(bob.cookie)).toEqual([conversation.id]);
    expect(await list(carol.cookie)).toEqual([]);
    // The same claims and kid under a signature Better Auth did not make are refused.
    const forged = await tokenOf(carol.cookie).then((t) => `${t.split('.').slice(0, 2).join('.')}.${'A'.repeat(86)}`);
    expect((await fetch(`${gateway}/api/conversations`, { headers: { authorization: `Bearer ${forged}` } })).status).toBe(401);
  });

  it("serves the page with the widget from the gateway, which lets the app's origin in", async () => {
    const page = await (await fetch(`${app}/`)).text();
    expect(page).toContain(`<script type="module" src="${gateway}/widget/chat-widget.js"></script>`);
    const preflight = await fetch(`${gateway}/api/conversations`, {
      method: 'OPTIONS',
      headers: { origin: app, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
    });
    expect(preflight.status).toBe(204);
  });
});
