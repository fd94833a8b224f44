// The app's own backend, reduced to what the chat needs: its users sign in to it (here a name and a session cookie,
// kept simple; yours has passwords, SSO or an auth library), and it mints a short-lived token for the gateway for
// whoever is signed in. The gateway trusts the token's `sub` as the user's id, so only this backend may mint them:
// it shares JWT_SECRET with the gateway, and the browser never sees the secret.
import { randomBytes, randomUUID } from 'node:crypto';
import express, { type Request } from 'express';
import jwt from 'jsonwebtoken';

export interface AppOptions {
  /** HS256 secret shared with the gateway (its JWT_SECRET), at least 32 bytes. */
  secret: string;
  /** The token's `iss` and `aud`: the gateway checks them when its JWT_ISSUER and JWT_AUDIENCE are set. */
  issuer: string;
  audience: string;
  /** Lifetime of a token, in seconds. Short: the SDK asks for a new one before it expires, on the open socket. */
  tokenTtlS: number;
  /** The gateway's base URL, for the page (known once the gateway is up). */
  gatewayUrl: () => string;
}

interface User {
  id: string;
  name: string;
}

const SESSION_COOKIE = 'sid';

export function createApp(o: AppOptions): express.Express {
  // The app's users and sessions. In memory for the example; a real app has both in its database.
  const usersByName = new Map<string, User>();
  const sessions = new Map<string, User>();

  const signedIn = (req: Request): User | undefined => {
    const sid = cookies(req)[SESSION_COOKIE];
    return sid ? sessions.get(sid) : undefined;
  };

  const app = express();
  app.disable('x-powered-by');
  app.use(express.urlencoded({ extended: false, limit: '4kb' }));

  app.post('/login', (req, res) => {
    const name = String(req.body?.name ?? '').trim();
    if (!/^[\p{L}\p{N} ._-]{1,40}$/u.test(name)) return void res.status(400).type('text').send('a name of 1 to 40 letters, please');
    const user = usersByName.get(name) ?? { id: randomUUID(), name };
    usersByName.set(name, user);
    const sid = randomBytes(32).toString('base64url');
    sessions.set(sid, user);
    // HttpOnly: page scripts never read it. SameSite=Lax: another site's page cannot make the browser send it
    // with a request of its own (it could not read /chat-token's answer anyway: no CORS header is sent).
    res.cookie(SESSION_COOKIE, sid, { httpOnly: true, sameSite: 'lax', path: '/', secure: req.secure });
    res.redirect(303, '/');
  });

  app.post('/logout', (req, res) => {
    const sid = cookies(req)[SESSION_COOKIE];
    if (sid) sessions.delete(sid);
    res.clearCookie(SESSION_COOKIE, { path: '/' });
    res.redirect(303, '/');
  });

  // The one route the chat needs: a token for the user signed in, for the page's widget or SDK (`getToken`).
  app.get('/chat-token', (req, res) => {
    const user = signedIn(req);
    res.set('Cache-Control', 'no-store');
    if (!user) return void res.status(401).json({ error: 'not signed in' });
    const token = jwt.sign({ name: user.name }, o.secret, {
      algorithm: 'HS256',
      subject: user.id,
      issuer: o.issuer,
      audience: o.audience,
      expiresIn: o.tokenTtlS,
    });
    res.json({ token });
  });

  app.get('/', (req, res) => {
    const user = signedIn(req);
    res
      .set('Cache-Control', 'no-store')
      .type('html')
      .send(user ? chatPage(user, o.gatewayUrl()) : signInPage());
  });

  return app;
}

/** The request's cookies (only the simple `name=value` pairs this app sets). */
function cookies(req: Request): Record<string, string> {
  const jar: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0) jar[part.slice(0, at).trim()] = decodeURIComponent(part.slice(at + 1).trim());
  }
  return jar;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const layout = (body: string, head = '') => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Example app</title><link rel="icon" href="data:,">${head}
<style>body{margin:0;font-family:system-ui,sans-serif;background:#f4f6f8}header{display:flex;gap:1rem;align-items:center;padding:.75rem 1rem;background:#fff;border-bottom:1px solid #dde}main{padding:1rem}</style>
</head><body>${body}</body></html>`;

function signInPage(): string {
  return layout(`<main><h1>Example app</h1>
<form method="post" action="/login"><label>Your name <input name="name" required maxlength="40" autofocus></label>
<button>Sign in</button></form></main>`);
}

function chatPage(user: User, gatewayUrl: string): string {
  const gateway = escapeHtml(gatewayUrl);
  // The widget comes from the gateway; its token from this backend, asked again on every handshake and renewal.
  return layout(
    `<header><strong>Example app</strong><span id="who">${escapeHtml(user.name)}</span>
<form method="post" action="/logout"><button>Sign out</button></form></header>
<main><chat-widget server="${gateway}" style="height: calc(100vh - 6rem); --chat-accent: #0f766e"></chat-widget></main>
<script type="module">
  document.querySelector('chat-widget').getToken = async () => {
    const res = await fetch('/chat-token');
    if (!res.ok) throw new Error('signed out');
    return (await res.json()).token;
  };
</script>`,
    `<script type="module" src="${gateway}/widget/chat-widget.js"></script>`,
  );
}
