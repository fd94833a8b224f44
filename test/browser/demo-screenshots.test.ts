// The README's screenshots (docs/demo.png, docs/demo-phone.png), made by a test that checks what they show: the
// gateway's own page in demo mode, whose assistant is the project's scripted OpenAI-compatible server calling the
// example todo MCP server's tools, with a Markdown reply and its tool calls, at 1280 px and at phone width.
// The screenshots go to test-artifacts/browser/ like every other; `npm run docs:screenshots` runs this file with
// UPDATE_DOCS_SCREENSHOTS=1, which also copies them into docs/.
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startGateway, type StartedGateway } from '../helpers/gateway.ts';
import { startSseServer, toolResults, type SseRequest, type SseScript, type SseServer } from '../helpers/sse-server.ts';
import { startTodoMcp, type TodoMcpProcess } from '../helpers/todo-mcp.ts';
import { ensureWidgetBuilt, launchChromium, screenshot, send, settled, Tabs, until, widget } from './helpers.ts';

const MCP_SECRET = 'demo-screenshots-secret-0123456789abcdefghijklmn';
const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url));

const ASK = 'Add buy milk and call the plumber to my list, then show me the list';
const REPLY = [
  '## Your list\n\n',
  'I added **2 tasks**. Here is everything on it:\n\n',
  '1. Buy milk\n',
  '2. Call the plumber\n\n',
  'Both are *open*: say “done with the milk” and I will check it off.\n\n',
  'Your own backend can ask the same through `POST /api/chat`:\n\n',
  '```sh\ncurl localhost:3000/api/chat -H "Authorization: Bearer $TOKEN" \\\n  -d \'{"message":"What is on my list?"}\'\n```',
];

/** The scripted model: the todo tools for ASK (two adds, then a list, then the answer), a short answer otherwise. */
function model(body: SseRequest['body']): SseScript {
  const last = body?.messages?.findLast((m: { role: string }) => m.role === 'user')?.content ?? '';
  if (last !== ASK) {
    return { chunks: ['I keep your **todo list**: I can add, list, complete, update and delete tasks. ', 'Try *“Add buy milk”*.'] };
  }
  const results = toolResults(body).length;
  if (results === 0) {
    return {
      toolCalls: [
        { name: 'add_task', arguments: { title: 'Buy milk' } },
        { name: 'add_task', arguments: { title: 'Call the plumber' } },
      ],
    };
  }
  if (results === 2) return { toolCalls: [{ name: 'list_tasks', arguments: {} }] };
  return { chunks: REPLY, delayMs: 40 };
}

let db: TestDatabase;
let demoDir: string;
let sse: SseServer;
let todo: TodoMcpProcess;
let demo: StartedGateway;
let browser: Browser;
let tabs: Tabs;

beforeAll(async () => {
  [db, sse] = await Promise.all([createTestDatabase(), startSseServer(), ensureWidgetBuilt()]);
  sse.setScript(model);
  todo = await startTodoMcp({ MCP_TOKEN_SECRET: MCP_SECRET, DATABASE_URL: db.url, DATABASE_SCHEMA: 'todo' });
  // Demo mode (a name is enough to sign in) runs on the embedded database only.
  demoDir = await mkdtemp(join(tmpdir(), 'chat-demo-shots-'));
  demo = await startGateway(
    {
      PGLITE_DIR: demoDir,
      JWT_SECRET: undefined,
      NODE_ID: 'demo-node',
      ASSISTANT: 'openai',
      OPENAI_BASE_URL: sse.baseUrl,
      OPENAI_MODEL: 'scripted',
      OPENAI_API_KEY: 'sk-scripted',
      MCP_SERVERS: `todo=${todo.url}`,
      MCP_TOKEN_SECRET: MCP_SECRET,
    },
    { makeDemoSecret: () => randomBytes(48).toString('base64url') },
  );
  browser = await launchChromium();
  tabs = new Tabs(() => browser);
});

afterAll(async () => {
  await tabs?.closeAll();
  await browser?.close();
  await demo?.close();
  await Promise.all([todo?.stop(), sse?.close()]);
  await db?.drop();
  if (demoDir) await rm(demoDir, { recursive: true, force: true });
});

async function signIn(page: Page, name: string): Promise<void> {
  await expect.poll(() => page.locator('#signin').isVisible()).toBe(true);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Start chatting' }).click();
  await until(async () => (await widget(page).status.textContent()) === 'Online', 'the widget online');
}

/** Scrolls the conversation so that the reply starts at the top of its pane (its chips and heading in view). */
async function showReplyFromTop(page: Page): Promise<void> {
  await widget(page)
    .replies.last()
    .evaluate((li) => {
      const scroller = li.closest('.scroller')!;
      scroller.scrollTop = (li as HTMLElement).offsetTop - 60;
    });
}

it('the demo page shows a Markdown reply with its tool calls, wide and at phone width', async () => {
  const wide = await tabs.open(demo.url, 'wide', { viewport: { width: 1280, height: 860 }, online: false });
  await signIn(wide, 'Ada');
  await send(wide, 'What can you do?');
  await settled(wide, 2, 'the first exchange');
  await widget(wide).newChat.click();
  await send(wide, ASK);
  await settled(wide, 2, 'the todo exchange');

  const reply = widget(wide).replies.last();
  expect(await reply.locator('.tools li').allTextContents()).toEqual(['Added a task', 'Added a task', 'Looked at your tasks']);
  expect(await reply.locator('.text h2').textContent()).toBe('Your list');
  expect(await reply.locator('.text ol > li').allTextContents()).toEqual(['Buy milk', 'Call the plumber']);
  expect(await reply.locator('.text .code-lang').textContent()).toBe('sh');
  const tasks = await db.query<{ title: string }>('select title from todo.tasks where user_id = $1 order by id', ['Ada']);
  // The model asked for both adds in one step: they run side by side, in either order.
  expect(tasks.map((t) => t.title).sort()).toEqual(['Buy milk', 'Call the plumber']);
  await showReplyFromTop(wide);
  const shots = [await screenshot(wide, 'demo')];

  const phone = await tabs.open(demo.url, 'phone', {
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
    online: false,
  });
  await signIn(phone, 'Ada');
  await settled(phone, 2, 'the todo exchange restored on the phone');
  expect(await widget(phone).replies.last().locator('.tools li').count()).toBe(3);
  await showReplyFromTop(phone);
  shots.push(await screenshot(phone, 'demo-phone'));
  expect(tabs.pageErrors).toEqual([]);

  if (process.env.UPDATE_DOCS_SCREENSHOTS === '1') {
    await Promise.all(shots.map((shot) => copyFile(shot, join(DOCS, shot.slice(shot.lastIndexOf('/') + 1)))));
  }
});
