// examples/react-chat as `npm start` runs it (the packages and the page built, Vite's preview server), against a
// gateway of the test's, driven in Chromium: two tabs of one user render the same conversations and messages, a
// reply streams in both and is stopped from the other one, and what both show is what the gateway stored.
import { createServer } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchChromium, screenshot, until, watchErrors } from '../browser/helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { killExamples, startExample, type RunningExample } from '../helpers/example-process.ts';
import { startGateway, TEST_SECRET, type StartedGateway } from '../helpers/gateway.ts';

let db: TestDatabase;
let gateway: StartedGateway;
let example: RunningExample;
let browser: Browser;
let origin: string;

/** A port free right now: the page's origin must be in the gateway's CORS_ORIGINS before either starts. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  db = await createTestDatabase();
  // A paced echo, so that a reply streams long enough to be seen, and stopped, mid-way.
  gateway = await startGateway({ DATABASE_URL: db.url, ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '60', CORS_ORIGINS: origin });
  [example, browser] = await Promise.all([
    startExample('react-chat', 'start.ts', { PORT: String(port), GATEWAY_URL: gateway.url, JWT_SECRET: TEST_SECRET }, 90_000),
    launchChromium(),
  ]);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await example?.stop();
  killExamples();
  await gateway?.close();
  await db?.drop();
});

interface Shown {
  seq: number;
  role: string;
  status: string;
  text: string;
}

const shown = (page: Page): Promise<Shown[]> =>
  page.locator('li.msg').evaluateAll((items) =>
    items.map((li) => {
      const el = li as HTMLElement;
      return {
        seq: Number(el.dataset.seq),
        role: el.dataset.role!,
        status: el.dataset.status!,
        text: el.querySelector('.text')!.textContent!,
      };
    }),
  );

async function tab(user: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors = watchErrors(page, user);
  await page.goto(`${origin}/?user=${user}`);
  await until(async () => (await page.locator('.status').textContent()) === 'connected', `${user}'s tab to connect`);
  return { page, errors };
}

it('renders and syncs two tabs of one user: messages, the conversation list, a streaming reply stopped from the other tab', async () => {
  const one = await tab('alice');
  const two = await tab('alice');

  // Tab one starts a conversation; its reply streams to the end.
  await one.page.getByLabel('Message').fill('hello from tab one');
  await one.page.getByRole('button', { name: 'Send' }).click();
  const first = [
    { seq: 1, role: 'user', status: 'complete', text: 'hello from tab one' },
    { seq: 2, role: 'assistant', status: 'complete', text: 'Echo: hello from tab one' },
  ];
  await until(async () => JSON.stringify(await shown(one.page)) === JSON.stringify(first), 'the reply in tab one');

  // Tab two lists it (live), opens it, and shows the same.
  const listed = two.page.locator('button.conv', { hasText: 'hello from tab one' });
  await until(() => listed.isVisible(), 'the conversation in the list of tab two');
  await listed.click();
  await until(async () => JSON.stringify(await shown(two.page)) === JSON.stringify(first), 'the conversation in tab two');

  // Tab two sends a long message; tab one sees the reply stream, and stops it; both end with it stopped.
  const long = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
  await two.page.getByLabel('Message').fill(long);
  await two.page.getByRole('button', { name: 'Send' }).click();
  const streamingInOne = one.page.locator('li.msg[data-seq="4"][data-status="streaming"]');
  await until(() => streamingInOne.isVisible(), 'the reply streaming in tab one');
  await screenshot(one.page, 'react-chat-streaming');
  await one.page.getByRole('button', { name: 'Stop' }).click();
  for (const { page } of [one, two]) {
    await until(() => page.locator('li.msg[data-seq="4"][data-status="stopped"]').isVisible(), 'the reply stopped in both tabs');
    await until(() => page.getByRole('button', { name: 'Send' }).isVisible(), 'the Send button back');
  }

  // What both tabs render is what the gateway stored.
  const conversationId = ((await (await api('/api/conversations')).json()) as { conversations: { id: string }[] }).conversations[0]!.id;
  const stored = ((await (await api(`/api/conversations/${conversationId}/messages`)).json()) as { messages: Record<string, unknown>[] })
    .messages;
  const expected = stored.map((m) => ({ seq: m.seq, role: m.role, status: m.status, text: m.content }));
  expect(expected).toHaveLength(4);
  expect((expected[3]!.text as string).length).toBeLessThan(`Echo: ${long}`.length);
  for (const { page } of [one, two])
    await until(async () => JSON.stringify(await shown(page)) === JSON.stringify(expected), 'the stored messages');
  await screenshot(two.page, 'react-chat-synced');
  expect([...one.errors, ...two.errors]).toEqual([]);
});

const api = (path: string) => fetch(`${gateway.url}${path}`, { headers: { authorization: `Bearer ${gateway.tokenFor('alice')}` } });
