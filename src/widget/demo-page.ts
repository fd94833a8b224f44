/**
 * The demo page's script (built to public/dist/demo.js, served at /widget/demo.js; the page is public/index.html).
 * Demo mode: type a name, get a token from POST /api/demo/token, chat. With a key configured (the server marks
 * the page `data-mode="key"`, or the endpoint answers 404) only the integration snippet is shown.
 */
import type { ChatWidget } from './chat-widget.ts';

const NAME_KEY = 'chat-demo:name';

class NotDemoMode extends Error {}

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  signin: byId<HTMLElement>('signin'),
  form: byId<HTMLFormElement>('signin-form'),
  name: byId<HTMLInputElement>('name'),
  button: byId<HTMLButtonElement>('signin-button'),
  error: byId<HTMLParagraphElement>('signin-error'),
  widget: byId<ChatWidget>('widget'),
  keyMode: byId<HTMLElement>('key-mode'),
  embed: byId<HTMLDetailsElement>('embed'),
  snippet: byId<HTMLElement>('snippet'),
  who: byId<HTMLElement>('who'),
  whoName: byId<HTMLElement>('who-name'),
  signOut: byId<HTMLButtonElement>('sign-out'),
};

const session = {
  get: () => {
    try {
      return sessionStorage.getItem(NAME_KEY);
    } catch {
      return null;
    }
  },
  set: (name: string | null) => {
    try {
      if (name === null) sessionStorage.removeItem(NAME_KEY);
      else sessionStorage.setItem(NAME_KEY, name);
    } catch {
      // Only the reload convenience is lost.
    }
  },
};

async function fetchToken(name: string): Promise<string> {
  const res = await fetch('/api/demo/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  if (res.status === 404) throw new NotDemoMode('no demo token endpoint');
  const body = (await res.json().catch(() => null)) as { token?: string; error?: { message?: string } } | null;
  if (!res.ok || !body?.token) throw new Error(body?.error?.message ?? `the server answered ${res.status}`);
  return body.token;
}

function showKeyMode(): void {
  document.documentElement.dataset.mode = 'key';
  session.set(null);
  if (ui.widget.getToken) ui.widget.getToken = null;
  ui.signin.hidden = true;
  ui.widget.hidden = true;
  ui.who.hidden = true;
  ui.keyMode.hidden = false;
  ui.embed.open = true;
}

function showSignIn(message?: string): void {
  ui.signin.hidden = false;
  ui.widget.hidden = true;
  ui.who.hidden = true;
  ui.error.hidden = !message;
  ui.error.textContent = message ?? '';
  ui.name.focus();
}

async function signIn(name: string, restoring: boolean): Promise<void> {
  ui.button.disabled = true;
  ui.error.hidden = true;
  let token: string;
  try {
    token = await fetchToken(name);
  } catch (err) {
    ui.button.disabled = false;
    if (err instanceof NotDemoMode) return showKeyMode();
    session.set(null);
    return showSignIn(restoring ? undefined : `Could not sign in: ${(err as Error).message}`);
  }
  ui.button.disabled = false;
  session.set(name);
  await customElements.whenDefined('chat-widget');
  // The first handshake uses the token just fetched; reconnects fetch a fresh one (the demo secret changes when
  // the server restarts, so an old token would be refused).
  let first: string | undefined = token;
  ui.widget.getToken = async () => {
    if (first) {
      const t = first;
      first = undefined;
      return t;
    }
    try {
      return await fetchToken(name);
    } catch (err) {
      // The server restarted with a key: the demo is over.
      if (err instanceof NotDemoMode) showKeyMode();
      throw err;
    }
  };
  ui.signin.hidden = true;
  ui.widget.hidden = false;
  ui.who.hidden = false;
  ui.whoName.textContent = name;
}

function signOut(): void {
  session.set(null);
  ui.widget.getToken = null;
  ui.name.value = '';
  showSignIn();
}

function renderSnippet(): void {
  const origin = location.origin;
  ui.snippet.textContent = [
    `<script type="module" src="${origin}/widget/chat-widget.js"></script>`,
    `<chat-widget server="${origin}" style="--chat-accent: #0a7d5a; --chat-height: 600px"></chat-widget>`,
    `<script type="module">`,
    `  // Your backend signs a JWT for the signed-in user (sub = user id, exp required).`,
    `  document.querySelector('chat-widget').getToken = async () =>`,
    `    (await fetch('/your-backend/chat-token', { credentials: 'include' })).text();`,
    `</script>`,
  ].join('\n');
}

renderSnippet();
ui.form.addEventListener('submit', (e) => {
  e.preventDefault();
  const name = ui.name.value.trim();
  if (!name) return showSignIn('Type a name first.');
  void signIn(name, false);
});
ui.signOut.addEventListener('click', signOut);

if (document.documentElement.dataset.mode === 'key') {
  showKeyMode();
} else {
  const name = session.get();
  if (name) void signIn(name, true);
  else showSignIn();
}
