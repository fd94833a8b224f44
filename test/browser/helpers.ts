// Real headless Chromium (Debian's, driven by playwright-core) for the widget's browser tests, and the small
// waits those tests share. Screenshots of every step go to test-artifacts/browser/ (gitignored), kept as
// artefacts of the run.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Locator, type Page } from 'playwright-core';
import { buildWidget } from '../../scripts/build-widget.ts';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS_DIR = fileURLToPath(new URL('../../test-artifacts/browser/', import.meta.url));
/** Generous: two cores shared by two test files and a browser. */
export const UI_TIMEOUT_MS = 15_000;

/**
 * Launches Chromium headless with the flags these machines need. playwright's `launch` gives the browser a fresh
 * temporary user-data-dir (deleted on close); each `newContext()` is a separate profile in it (own storage, own
 * network emulation), like a separate browser window of another person.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM_PATH}: run \`apt-get install -y chromium\` (or set CHROMIUM_PATH)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
    ],
  });
}

/** The widget bundle the gateway serves: built here too, so `vitest run test/browser` works without `npm test`. */
export async function ensureWidgetBuilt(): Promise<void> {
  await buildWidget();
}

/** Saves a full-page screenshot as test-artifacts/browser/<name>.png; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Collects the page's console errors and uncaught exceptions, for assertions and failure messages. */
export function watchErrors(page: Page, label: string): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`${label}: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`${label}: console: ${msg.text()}`);
  });
  return errors;
}

/** What a widget shows of one message: the DOM's data attributes and text. */
export interface ShownMessage {
  seq: number;
  role: string;
  status: string;
  text: string;
}

/** The messages the widget on `page` shows, in DOM order (the shadow root is open; locators pierce it). */
export async function shownMessages(page: Page): Promise<ShownMessage[]> {
  return page.locator('chat-widget li.msg').evaluateAll((items) =>
    items.map((li) => {
      const el = li as HTMLElement;
      return {
        seq: Number(el.dataset.seq),
        role: el.dataset.role ?? '',
        status: el.dataset.status ?? '',
        text: el.querySelector('.text')?.textContent ?? '',
      };
    }),
  );
}

/** Re-evaluates `check` in Node until it returns a value (the page changes by itself; never a fixed sleep). */
export async function until<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = UI_TIMEOUT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The tabs a test file opens, each in its own browser context (own storage, own network, like another window of
 * another person's browser), with the uncaught exceptions of their pages (console errors are expected: an offline
 * tab's refused reconnects).
 */
export class Tabs {
  readonly pageErrors: string[] = [];
  private readonly contexts: BrowserContext[] = [];
  private readonly browser: () => Browser;

  constructor(browser: () => Browser) {
    this.browser = browser;
  }

  /** Opens `url` in a new context; `online` (default) waits until its widget says so. */
  async open(url: string, label: string, options: BrowserContextOptions & { online?: boolean } = {}): Promise<Page> {
    const { online: waitOnline = true, ...contextOptions } = options;
    const context = await this.browser().newContext({ viewport: { width: 1000, height: 640 }, ...contextOptions });
    this.contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (err) => this.pageErrors.push(`${label}: ${err.message}`));
    await page.goto(url);
    if (waitOnline) await online(page);
    return page;
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled(this.contexts.splice(0).map((c) => c.close()));
  }
}

/** Waits until the widget on `page` is connected. */
export async function online(page: Page): Promise<void> {
  await until(async () => (await widget(page).status.textContent()) === 'Online', 'the widget to be online');
}

/** Types `text` into the widget's box and presses Enter, as a user does. */
export async function send(page: Page, text: string): Promise<void> {
  const w = widget(page);
  await w.input.fill(text);
  await w.input.press('Enter');
}

/** Waits until the page shows `count` messages, none streaming or pending. */
export function settled(page: Page, count: number, what: string): Promise<ShownMessage[]> {
  return until(async () => {
    const ms = await shownMessages(page);
    return ms.length === count && ms.every((m) => m.status !== 'streaming' && m.status !== 'pending') && ms;
  }, what);
}

/** The widget's parts, by role and label where the UI has them (what a user or a screen reader finds). */
export function widget(page: Page) {
  const root = page.locator('chat-widget');
  return {
    root,
    input: root.getByRole('textbox', { name: 'Message' }),
    send: root.getByRole('button', { name: 'Send', exact: true }),
    stop: root.getByRole('button', { name: 'Stop', exact: true }),
    newChat: root.getByRole('button', { name: 'New chat' }),
    status: root.locator('.status'),
    banner: root.locator('.banner'),
    notice: root.getByRole('alert'),
    title: root.locator('#conv-title'),
    conversations: root.locator('li.conv'),
    conversation: (title: string | RegExp): Locator => root.locator('li.conv').filter({ hasText: title }),
    live: root.locator('[aria-live="polite"]'),
    messages: root.locator('li.msg'),
    replies: root.locator('li.msg[data-role="assistant"]'),
    hint: root.locator('#hint'),
  };
}

export interface EmbeddingSite {
  /** `http://127.0.0.1:<port>`: list it in the gateway's CORS_ORIGINS. */
  origin: string;
  /**
   * A page of the site embedding the widget served by `gatewayUrl`, signed in as `user`. `token`: the page sets
   * `widget.token`; `getToken`: it sets `widget.getToken`, which asks the site's backend (`/chat-token`) on every
   * handshake; `server` false leaves the `server` attribute out (the widget then uses its script's origin).
   */
  pageUrl(o: { user: string; gatewayUrl: string; auth: 'token' | 'getToken'; server?: boolean }): string;
  close(): Promise<void>;
}

/**
 * Another site that embeds the widget, as the integration snippet shows: the bundle comes from the gateway
 * (cross-origin), and the site's own backend mints the user's token. Its pages are real loopback responses, as
 * Chromium's local-network-access checks want for pages that open sockets to 127.0.0.1.
 */
export async function startEmbeddingSite(tokenFor: (user: string) => string): Promise<EmbeddingSite> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://site');
    const user = url.searchParams.get('user') ?? '';
    if (url.pathname === '/chat-token' && user) {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end(tokenFor(user));
      return;
    }
    if (url.pathname === '/tab' && user) {
      const gateway = url.searchParams.get('gateway') ?? '';
      const auth =
        url.searchParams.get('auth') === 'getToken'
          ? `widget.getToken = async () => (await fetch('/chat-token?user=' + encodeURIComponent(${JSON.stringify(user)}))).text();`
          : `widget.token = ${JSON.stringify(tokenFor(user))};`;
      const serverAttr = url.searchParams.get('server') === '0' ? '' : ` server="${gateway}"`;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${user}</title><link rel="icon" href="data:,">
<script type="module" src="${gateway}/widget/chat-widget.js"></script></head>
<body style="margin:0;padding:12px;font-family:sans-serif;background:#eef1f5">
<chat-widget${serverAttr} style="--chat-height: calc(100vh - 24px)"></chat-widget>
<script type="module">const widget = document.querySelector('chat-widget'); ${auth}</script>
</body></html>`);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    pageUrl: ({ user, gatewayUrl, auth, server: withServer = true }) =>
      `${origin}/tab?${new URLSearchParams({ user, gateway: gatewayUrl, auth, server: withServer ? '1' : '0' })}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
