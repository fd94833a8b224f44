// The gateway's own page at `/`, in real headless Chromium. Demo mode (no key): type a name, get a token from
// POST /api/demo/token, chat; refused sends are explained; a phone-width tab of the same user works; rename and
// delete work from the keyboard. With a key configured: no token endpoint, and the page shows the integration
// snippet (the widget script stays available). Every test signs in under a name of its own (a user of its own),
// so any one runs alone (`-t`). Screenshots in test-artifacts/browser/demo-*.png.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startGateway, type StartedGateway } from '../helpers/gateway.ts';
import { ensureWidgetBuilt, launchChromium, screenshot, send, settled, shownMessages, Tabs, until, widget } from './helpers.ts';

const MAX_CHARS = 200;
const SEND_RATE = 3;

let db: TestDatabase;
let demoDir: string | undefined;
let demo: StartedGateway;
let keyed: StartedGateway;
let browser: Browser;
let tabs: Tabs;

beforeAll(async () => {
  [db] = await Promise.all([createTestDatabase(), ensureWidgetBuilt()]);
  // Demo mode runs on the embedded database only.
  demoDir = await mkdtemp(join(tmpdir(), 'chat-demo-page-'));
  demo = await startGateway(
    {
      PGLITE_DIR: demoDir,
      JWT_SECRET: undefined,
      NODE_ID: 'demo-node',
      ASSISTANT: 'echo',
      ASSISTANT_DELAY_MS: '20',
      MAX_MESSAGE_CHARS: String(MAX_CHARS),
      SEND_RATE_LIMIT: String(SEND_RATE),
      SEND_RATE_WINDOW_S: '60',
    },
    { makeDemoSecret: () => randomBytes(48).toString('base64url') },
  );
  expect(demo.config.auth.demo).toBe(true);
  keyed = await startGateway({ DATABASE_URL: db.url, NODE_ID: 'keyed-node' });
  const bundle = await fetch(`${demo.url}/widget/chat-widget.js`);
  if (bundle.status !== 200) {
    throw new Error(
      `GET /widget/chat-widget.js answered ${bundle.status}: mount staticRoutes in src/http/app.ts (see src/http/static.routes.ts)`,
    );
  }
  browser = await launchChromium();
  tabs = new Tabs(() => browser);
});

afterEach(async () => {
  const errors = tabs.pageErrors.splice(0);
  await tabs.closeAll();
  expect(errors).toEqual([]);
});

afterAll(async () => {
  await tabs?.closeAll();
  await browser?.close();
  await Promise.allSettled([demo?.close(), keyed?.close()]);
  await db?.drop();
  if (demoDir) await rm(demoDir, { recursive: true, force: true });
});

const WIDE: BrowserContextOptions = { viewport: { width: 1280, height: 800 } };
const PHONE: BrowserContextOptions = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };

/** A name nobody else in this file signs in with: each test is a user of its own. */
const nameFor = (base: string) => `${base} ${randomBytes(3).toString('hex')}`;

/** Opens the demo page and waits for its sign-in form. */
async function demoPage(options: BrowserContextOptions, label: string): Promise<Page> {
  const page = await tabs.open(demo.url, label, { ...options, online: false });
  await expect.poll(() => page.locator('#signin').isVisible()).toBe(true);
  return page;
}

async function signIn(page: Page, name: string): Promise<void> {
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Start chatting' }).click();
  await until(async () => (await widget(page).status.textContent()) === 'Online', 'the widget online');
}

/** A signed-in demo page of `name` with one exchange sent from it. */
async function withConversation(name: string, options: BrowserContextOptions, label: string, text: string): Promise<Page> {
  const page = await demoPage(options, label);
  await signIn(page, name);
  await send(page, text);
  await settled(page, 2, `the exchange "${text}"`);
  return page;
}

/** The element focused inside the widget's shadow root, as `tag.class[aria-label]`. */
function focused(page: Page): Promise<string> {
  return page.locator('chat-widget').evaluate((el) => {
    const a = el.shadowRoot!.activeElement as HTMLElement | null;
    return a ? `${a.tagName.toLowerCase()}.${a.className}[${a.getAttribute('aria-label') ?? a.textContent ?? ''}]` : '';
  });
}

const horizontalOverflow = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);

describe('demo mode', () => {
  it('signs in by name, gets a token from the demo endpoint and chats (1280 px)', async () => {
    const wide = await demoPage(WIDE, 'wide');
    expect(await wide.locator('html').getAttribute('data-mode')).toBe('demo');
    expect(await wide.locator('#key-mode').isVisible()).toBe(false);
    await screenshot(wide, 'demo-1280-signin');

    const name = nameFor('Ada');
    await signIn(wide, name);
    expect(await wide.locator('#who-name').textContent()).toBe(name);
    await send(wide, 'Hi from the demo page');
    const shown = await settled(wide, 2, 'the first exchange');
    expect(shown.map((m) => [m.role, m.status, m.text])).toEqual([
      ['user', 'complete', 'Hi from the demo page'],
      ['assistant', 'complete', 'Echo: Hi from the demo page'],
    ]);
    // The reply was announced to screen readers.
    await expect.poll(() => widget(wide).live.textContent()).toContain('Assistant: Echo: Hi from the demo page');
    expect(await horizontalOverflow(wide)).toBe(0);
    await screenshot(wide, 'demo-1280-chat');
  });

  it('explains a refused message that is too long, and gives the text back', async () => {
    const wide = await withConversation(nameFor('Long'), WIDE, 'too-long', 'A short one first');
    const w = widget(wide);
    const long = 'x'.repeat(MAX_CHARS + 1);
    await send(wide, long);
    await expect
      .poll(() => w.notice.textContent())
      .toBe(`Your message is too long: the limit is ${MAX_CHARS} characters. Yours has ${MAX_CHARS + 1}.`);
    expect(await w.input.inputValue()).toBe(long);
    expect(await shownMessages(wide)).toHaveLength(2);
    await screenshot(wide, 'demo-refused-too-long');
  });

  it('works at phone width (390 px), as a second tab of the same user that sees the first one live', async () => {
    const name = nameFor('Phone');
    const wide = await withConversation(name, WIDE, 'phone-wide', 'Hi from the demo page');
    const phone = await demoPage(PHONE, 'phone');
    expect(await horizontalOverflow(phone)).toBe(0);
    await screenshot(phone, 'demo-390-signin');

    await signIn(phone, name);
    const w = widget(phone);
    // The most recent conversation opens by itself; one pane at a time on a narrow screen.
    await settled(phone, 2, 'the conversation restored on the phone');
    expect(await w.root.locator('.side').isVisible()).toBe(false);
    expect(await horizontalOverflow(phone)).toBe(0);

    await send(wide, 'From the big screen');
    await settled(phone, 4, 'the other tab’s exchange, live');
    await screenshot(phone, 'demo-390-chat');

    await w.root.getByRole('button', { name: 'Back to conversations' }).tap();
    expect(await w.root.locator('.side').isVisible()).toBe(true);
    expect(await w.input.isVisible()).toBe(false);
    await screenshot(phone, 'demo-390-list');
    await w.conversations.first().locator('.conv-open').tap();
    await expect.poll(() => w.input.isVisible()).toBe(true);
  });

  it('explains a rate-limited send, with how long to wait', async () => {
    const wide = await demoPage(WIDE, 'rate');
    await signIn(wide, nameFor('Quick'));
    const w = widget(wide);
    // The limit is SEND_RATE per minute: one send more is refused.
    let refused = false;
    for (let i = 1; i <= SEND_RATE + 1 && !refused; i++) {
      const before = (await shownMessages(wide)).length;
      await send(wide, `quick ${i}`);
      refused = await until(async () => {
        if ((await w.notice.isVisible()) && /too fast/.test((await w.notice.textContent()) ?? '')) return 'refused';
        const ms = await shownMessages(wide);
        return ms.length === before + 2 && ms.every((m) => m.status !== 'streaming' && m.status !== 'pending') && 'sent';
      }, `send ${i} answered`).then((r) => r === 'refused');
    }
    expect(refused).toBe(true);
    expect(await w.notice.textContent()).toMatch(/^You are sending messages too fast\. Please wait \d+ seconds? and try again\.$/);
    expect(await w.input.inputValue()).toBe(`quick ${SEND_RATE + 1}`);
    await screenshot(wide, 'demo-refused-rate-limited');
    await w.root.getByRole('button', { name: 'Dismiss' }).click();
    expect(await w.notice.isVisible()).toBe(false);
  });

  it('renames and deletes a conversation from the keyboard; the other tab follows', async () => {
    const name = nameFor('Keys');
    const wide = await withConversation(name, WIDE, 'keys-wide', 'Rename me');
    const phone = await demoPage(PHONE, 'keys-phone');
    await signIn(phone, name);
    await settled(phone, 2, 'the conversation restored on the phone');
    const w = widget(wide);
    const item = w.conversations.first();
    await item.locator('[data-action="rename"]').focus();
    await wide.keyboard.press('Enter');
    expect(await focused(wide)).toMatch(/^input\./);
    await wide.keyboard.type('Renamed by keyboard'); // the old title is selected: typing replaces it
    await wide.keyboard.press('Enter');
    await expect.poll(() => w.title.textContent()).toBe('Renamed by keyboard');
    await expect.poll(() => widget(phone).conversation('Renamed by keyboard').count()).toBe(1);
    expect(await focused(wide)).toMatch(/^button\.conv-open/);

    // Arrow keys and Tab reach the delete button; the confirmation starts on Cancel, Shift+Tab goes to Delete.
    await wide.keyboard.press('Tab');
    await wide.keyboard.press('Tab');
    expect(await focused(wide)).toMatch(/^button\.icon\[Delete “Renamed by keyboard”\]/);
    await wide.keyboard.press('Enter');
    expect(await focused(wide)).toMatch(/\[Cancel\]$/);
    await wide.keyboard.press('Shift+Tab');
    await wide.keyboard.press('Enter');
    await expect.poll(() => w.conversations.count()).toBe(0);
    expect(await w.title.textContent()).toBe('New conversation');
    await expect.poll(() => widget(phone).conversations.count()).toBe(0);
    await expect.poll(() => widget(phone).notice.textContent()).toBe('This conversation was deleted in another window.');
    await screenshot(wide, 'demo-keyboard-deleted');
    await screenshot(phone, 'demo-390-deleted-elsewhere');
  });
});

describe('with a key configured', () => {
  it('has no token endpoint; the page shows the integration snippet and the widget script stays available', async () => {
    const token = await fetch(`${keyed.url}/api/demo/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Eve' }),
    });
    expect(token.status).toBe(404);
    const script = await fetch(`${keyed.url}/widget/chat-widget.js`, { headers: { origin: 'https://elsewhere.example' } });
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect(script.headers.get('access-control-allow-origin')).toBe('*');
    expect(await script.text()).toContain('chat-widget');

    const page = await tabs.open(keyed.url, 'keyed', { ...WIDE, online: false });
    expect(await page.locator('html').getAttribute('data-mode')).toBe('key');
    await expect.poll(() => page.locator('#key-mode').isVisible()).toBe(true);
    expect(await page.locator('#signin').isVisible()).toBe(false);
    expect(await page.locator('chat-widget').isVisible()).toBe(false);
    const snippet = await page.locator('#snippet').textContent();
    expect(snippet).toContain(`<script type="module" src="${keyed.url}/widget/chat-widget.js"></script>`);
    expect(snippet).toContain(`<chat-widget server="${keyed.url}"`);
    expect(await page.locator('#snippet').isVisible()).toBe(true);
    await screenshot(page, 'demo-key-mode-1280');
  });
});
