// The app: Better Auth's routes under /api/auth, and one page that signs up or in with them and then shows the
// chat widget, whose tokens come from Better Auth's /api/auth/token.
import { toNodeHandler } from 'better-auth/node';
import express from 'express';
import type { Auth } from './auth.ts';

export function createApp(auth: Auth, gatewayUrl: () => string): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // Before any body parser: Better Auth reads the request body itself.
  app.all('/api/auth/*splat', toNodeHandler(auth));
  app.get('/', (_req, res) => void res.set('Cache-Control', 'no-store').type('html').send(page(gatewayUrl())));
  return app;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(gatewayUrl: string): string {
  const gateway = escapeHtml(gatewayUrl);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Better Auth + chat</title><link rel="icon" href="data:,">
<script type="module" src="${gateway}/widget/chat-widget.js"></script>
<style>body{margin:0;font-family:system-ui,sans-serif;background:#f4f6f8}main{padding:1rem}form{display:grid;gap:.5rem;max-width:20rem}[hidden]{display:none!important}</style>
</head><body><main>
<form id="auth">
  <h1>Sign in</h1>
  <input name="name" placeholder="Name (to sign up)">
  <input name="email" type="email" placeholder="Email" required>
  <input name="password" type="password" placeholder="Password (8+ characters)" required minlength="8">
  <button name="mode" value="sign-in">Sign in</button><button name="mode" value="sign-up">Sign up</button>
  <p id="error" role="alert"></p>
</form>
<section id="chat" hidden><p>Signed in as <strong id="who"></strong></p>
<chat-widget server="${gateway}" style="height: calc(100vh - 6rem)"></chat-widget></section>
</main>
<script type="module">
  const form = document.getElementById('auth');
  const show = async () => {
    const session = await (await fetch('/api/auth/get-session')).json();
    if (!session) return;
    form.hidden = true;
    document.getElementById('chat').hidden = false;
    document.getElementById('who').textContent = session.user.email;
    // Better Auth's JWT plugin signs a token for the session's user; the gateway verifies it on the JWKS.
    document.querySelector('chat-widget').getToken = async () => {
      const res = await fetch('/api/auth/token');
      if (!res.ok) throw new Error('signed out');
      return (await res.json()).token;
    };
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const mode = event.submitter.value;
    const body = mode === 'sign-up' ? { name: data.name || data.email, email: data.email, password: data.password } : { email: data.email, password: data.password };
    const res = await fetch('/api/auth/' + mode + '/email', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) document.getElementById('error').textContent = (await res.json().catch(() => ({}))).message ?? 'refused';
    else await show();
  });
  await show();
</script>
</body></html>`;
}
