// How the widget shows an assistant's reply, in real headless Chromium against two gateway nodes whose assistant is
// the project's scripted OpenAI-compatible server (ASSISTANT=openai), with the example todo MCP server's tools (and
// the tests' own lab MCP server, for a call slow enough to be seen running):
// Markdown, hostile text from the model that must never run, the "thinking" state before the first words, tool-call
// chips seen from two tabs on two nodes, the send box waiting while a reply streams, and a message sent offline.
// The scripted model answers each message by a marker in it. Every test has its own user and tabs (any one runs
// alone with `-t`). Screenshots in test-artifacts/browser/reply-*.png.
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { startLabMcp, type LabMcp } from '../helpers/lab-mcp.ts';
import { startSseServer, toolResults, type SseRequest, type SseScript, type SseServer } from '../helpers/sse-server.ts';
import { startTodoMcp, type TodoMcpProcess } from '../helpers/todo-mcp.ts';
import {
  ensureWidgetBuilt,
  launchChromium,
  screenshot,
  send,
  settled,
  shownMessages,
  startEmbeddingSite,
  Tabs,
  until,
  widget,
  type EmbeddingSite,
} from './helpers.ts';

const MCP_SECRET = 'browser-reply-test-secret-0123456789abcdefghijkl';
/** Long enough for both tabs to be seen with the call running. */
const SLOW_TOOL_MS = 2500;

let sse: SseServer;
let cluster: Cluster;
let todo: TodoMcpProcess;
let lab: LabMcp;
let site: EmbeddingSite;
let browser: Browser;
let tabs: Tabs;

// ---- the scripted model: each message is answered by the script whose marker it contains -------------------
type Script = (toolResultCount: number) => SseScript;
const scripts = new Map<string, Script>();
const lastUser = (body: SseRequest['body']): string => body?.messages?.findLast((m: { role: string }) => m.role === 'user')?.content ?? '';

beforeAll(async () => {
  sse = await startSseServer();
  sse.setScript((body) => {
    const text = lastUser(body);
    for (const [marker, script] of scripts) if (text.includes(marker)) return script(toolResults(body).length);
    return { chunks: [`re: ${text}`] };
  });
  site = await startEmbeddingSite((user) => cluster.tokenFor(user));
  // No node yet: the todo server's table goes into this cluster's database, and the nodes need its address.
  [cluster] = await Promise.all([
    startCluster({
      nodes: 0,
      env: {
        ASSISTANT: 'openai',
        OPENAI_BASE_URL: sse.baseUrl,
        OPENAI_MODEL: 'scripted',
        OPENAI_API_KEY: 'sk-scripted',
        MCP_TOKEN_SECRET: MCP_SECRET,
        CORS_ORIGINS: site.origin,
      },
    }),
    ensureWidgetBuilt(),
  ]);
  [todo, lab] = await Promise.all([
    startTodoMcp({ MCP_TOKEN_SECRET: MCP_SECRET, DATABASE_URL: cluster.db.url, DATABASE_SCHEMA: 'todo' }),
    startLabMcp({ secret: MCP_SECRET, slowMs: SLOW_TOOL_MS }),
  ]);
  for (let i = 0; i < 2; i++) await cluster.addNode({ MCP_SERVERS: `todo=${todo.url},lab=${lab.url}` });
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
  await cluster?.close();
  await Promise.all([todo?.stop(), lab?.close(), sse?.close(), site?.close()]);
});

/** A tab of `user` on node `node`, allowed to use the clipboard, in a German locale (24-hour times). */
function tab(user: string, node: number, label: string): Promise<Page> {
  return tabs.open(site.pageUrl({ user, gatewayUrl: cluster.nodes[node]!.url, auth: 'token' }), label, {
    permissions: ['clipboard-read', 'clipboard-write'],
    locale: 'de-DE',
  });
}

/** The last assistant row of the page's widget. */
const lastReply = (page: Page) => widget(page).replies.last();

/** Every outgoing `message:send` of the page's widget, recorded in the page from now on. */
async function recordSends(page: Page): Promise<() => Promise<string[]>> {
  await page.evaluate(() => {
    const w = window as unknown as { sends: string[] };
    w.sends = [];
    document.querySelector('chat-widget')!.client!.socket.onAnyOutgoing((event, payload) => {
      if (event === 'message:send') w.sends.push(payload.clientMessageId);
    });
  });
  return () => page.evaluate(() => (window as unknown as { sends: string[] }).sends);
}

async function api(path: string, user: string) {
  const res = await fetch(`${cluster.nodes[0]!.url}${path}`, { headers: { authorization: `Bearer ${cluster.tokenFor(user)}` } });
  return res.json();
}

describe('Markdown', () => {
  const MARKDOWN = [
    '## Your week\n\n',
    'Here is **the plan**, with *a little* emphasis:\n\n',
    '- Buy milk\n- Call the plumber\n\n',
    '1. First\n2. Second\n\n',
    'Run `npm test`, or read [the docs](https://example.com/docs).\n\n',
    '```ts\nconst answer: number = 42;\nconsole.log(answer < 100 && "<b>ok</b>");\n```\n\n',
    'Done.',
  ];

  it('renders headings, lists, emphasis, safe links and code with copy buttons; the user’s own text stays plain', async () => {
    scripts.set('[md]', () => ({ chunks: MARKDOWN, delayMs: 30 }));
    const page = await tab(cluster.user('md'), 0, 'md');
    const mine = 'Plan my week [md] **not bold** <b>not html</b> _nor this_';
    await send(page, mine);
    await settled(page, 2, 'the Markdown reply');
    const reply = lastReply(page).locator('.text');
    expect(await reply.locator('h2').textContent()).toBe('Your week');
    expect(await reply.locator('strong').textContent()).toBe('the plan');
    expect(await reply.locator('em').textContent()).toBe('a little');
    expect(await reply.locator('ul > li').allTextContents()).toEqual(['Buy milk', 'Call the plumber']);
    expect(await reply.locator('ol > li').allTextContents()).toEqual(['First', 'Second']);
    expect(await reply.locator('p > code').textContent()).toBe('npm test');
    const link = reply.locator('a');
    expect(await link.textContent()).toBe('the docs');
    expect(await link.getAttribute('href')).toBe('https://example.com/docs');
    expect(await link.getAttribute('target')).toBe('_blank');
    expect(await link.getAttribute('rel')).toBe('noopener noreferrer');
    const code = 'const answer: number = 42;\nconsole.log(answer < 100 && "<b>ok</b>");';
    expect(await reply.locator('.code .code-lang').textContent()).toBe('ts');
    expect(await reply.locator('.code pre code').textContent()).toBe(`${code}\n`);
    expect(await reply.locator('b').count()).toBe(0);

    // The user's message is plain text, marks and tags included.
    const own = widget(page).messages.first();
    expect(await own.getAttribute('data-role')).toBe('user');
    expect(await own.locator('.text').textContent()).toBe(mine);
    expect(await own.locator('.text *').count()).toBe(0);

    // Copy buttons: the code block's copies its code; the reply's copies the reply as written (Markdown).
    await reply.getByRole('button', { name: 'Copy code' }).click();
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(code);
    await lastReply(page).getByRole('button', { name: 'Copy reply' }).click();
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(MARKDOWN.join(''));
    await expect.poll(() => widget(page).live.textContent()).toContain('Copied to the clipboard.');

    // Timestamps are shown (not only on hover), in the browser's locale: here German, 24-hour.
    for (const row of await widget(page).messages.all()) {
      const time = row.locator('time');
      expect(await time.isVisible()).toBe(true);
      const [shown, expected] = await time.evaluate((el: HTMLTimeElement) => [
        el.textContent,
        new Intl.DateTimeFormat('de-DE', { hour: 'numeric', minute: '2-digit' }).format(new Date(el.dateTime)),
      ]);
      expect(shown).toBe(expected);
      expect(shown).toMatch(/^\d{1,2}:\d{2}$/);
    }
    await screenshot(page, 'reply-markdown');
  });

  it('an unfinished code fence while the reply streams stays a code block, and the page keeps working', async () => {
    scripts.set('[fence]', () => ({
      chunks: ['Look:\n\n```html\n<div onclick="alert(1)">', '\nstill code', '\n```\n\nAfter the code.'],
      delayMs: 1200,
    }));
    const page = await tab(cluster.user('fence'), 0, 'fence');
    await send(page, 'Show me [fence]');
    const reply = lastReply(page);
    await until(async () => ((await reply.locator('pre code').textContent()) ?? '').includes('still code'), 'the open fence');
    expect(await reply.getAttribute('data-status')).toBe('streaming');
    expect(await reply.locator('pre code').textContent()).toBe('<div onclick="alert(1)">\nstill code\n');
    expect(await reply.locator('div[onclick]').count()).toBe(0);
    expect(await widget(page).stop.isVisible()).toBe(true);
    expect(await widget(page).input.isEditable()).toBe(true);
    await screenshot(page, 'reply-open-fence');
    await settled(page, 2, 'the reply with its fence closed');
    expect(await reply.locator('.text > p').allTextContents()).toEqual(['Look:', 'After the code.']);
  });
});

describe('hostile text from the model', () => {
  const HOSTILE = [
    'Hi <img src=x onerror="window.__pwned=1">',
    '<script>window.__pwned=2</script>',
    '[click me](javascript:window.__pwned=3) and [upper](JaVaScRiPt:window.__pwned=4)',
    '[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
    '<a href="https://example.com" onclick="window.__pwned=5">raw link</a>',
    '<javascript:window.__pwned=6> <svg onload="window.__pwned=7"></svg>',
    '<iframe src="javascript:window.__pwned=8"></iframe>',
    '![tracker](https://example.com/pixel.png)',
    '[titled](https://example.com "x\\" onmouseover=\\"window.__pwned=9")',
    '```html\n<img src=x onerror="window.__pwned=10">\n```',
    '<div style="position:fixed;inset:0" class="sr-only">cover</div>',
  ].join('\n\n');

  it('never runs: no dialog, no script, no event handler, no javascript: or data: address in the DOM', async () => {
    scripts.set('[hostile]', () => ({ chunks: [HOSTILE.slice(0, 150), HOSTILE.slice(150)], delayMs: 50 }));
    const page = await tab(cluster.user('hostile'), 1, 'hostile');
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await send(page, 'Be nasty [hostile] <img src=x onerror="window.__pwned=11">');
    await settled(page, 2, 'the hostile reply');
    const reply = lastReply(page).locator('.text');
    // Hover and click over every element of both messages: a handler that slipped through would fire.
    for (const el of await widget(page).root.locator('li.msg .bubble *').all()) {
      await el.dispatchEvent('mouseover');
      await el.dispatchEvent('click');
    }
    const found = await widget(page).root.evaluate((host) => {
      const all = [...host.shadowRoot!.querySelectorAll('.messages *')];
      return {
        pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
        handlers: all.flatMap((el) => [...el.attributes].filter((a) => /^on/i.test(a.name)).map((a) => `${el.tagName}@${a.name}`)),
        addresses: all.flatMap((el) =>
          [...el.attributes].filter((a) => /^\s*(javascript|data|vbscript):/i.test(a.value)).map((a) => `${el.tagName}@${a.name}`),
        ),
        tags: [...new Set(all.map((el) => el.tagName.toLowerCase()))].filter((t) =>
          ['script', 'img', 'iframe', 'svg', 'object', 'embed', 'style', 'link', 'form', 'input'].includes(t),
        ),
        // Every element of the reply's text is one Markdown makes (the model's own tags are shown as text).
        foreign: [...host.shadowRoot!.querySelectorAll('li.msg[data-role="assistant"] .text *')]
          .map((el) => `${el.tagName.toLowerCase()}.${el.className}`)
          .filter((t) => !['p.', 'br.', 'a.', 'div.code', 'div.code-head', 'span.code-lang', 'button.copy-code', 'pre.'].includes(t))
          .filter((t) => !/^code\.(language-html)?$/.test(t)),
        styled: all.filter((el) => el.hasAttribute('style')).length,
        links: [...host.shadowRoot!.querySelectorAll('.messages a')].map((a) => [
          a.getAttribute('href'),
          a.getAttribute('target'),
          a.getAttribute('rel'),
        ]),
      };
    });
    expect(dialogs).toEqual([]);
    expect(found.pwned).toBeNull();
    expect(found.handlers).toEqual([]);
    expect(found.addresses).toEqual([]);
    expect(found.tags).toEqual([]);
    expect(found.foreign).toEqual([]);
    expect(found.styled).toBe(0);
    // The only links left are the safe ones, opening in a new tab without a referrer or an opener.
    expect(found.links).toEqual([
      ['https://example.com/pixel.png', '_blank', 'noopener noreferrer'],
      ['https://example.com', '_blank', 'noopener noreferrer'],
    ]);
    // The model's HTML is shown as the text it is; the refused links keep their words.
    const text = (await reply.textContent()) ?? '';
    for (const shown of [
      '<img src=x onerror="window.__pwned=1">',
      '<script>window.__pwned=2</script>',
      'click me',
      'upper',
      'data',
      'raw link',
    ]) {
      expect(text).toContain(shown);
    }
    expect(await reply.locator('pre code').textContent()).toBe('<img src=x onerror="window.__pwned=10">\n');
    expect(await widget(page).messages.first().locator('.text').textContent()).toBe(
      'Be nasty [hostile] <img src=x onerror="window.__pwned=11">',
    );
    await screenshot(page, 'reply-hostile');
  });
});

describe('while a reply is on its way', () => {
  it('shows "thinking" between the send and the first words, with Stop available', async () => {
    scripts.set('[slow-start]', () => ({ chunks: ['Here ', 'I am.'], firstDelayMs: 2500, delayMs: 50 }));
    const page = await tab(cluster.user('thinking'), 0, 'thinking');
    await send(page, 'Take your time [slow-start]');
    const reply = lastReply(page);
    await until(async () => (await reply.locator('.thinking').isVisible()) && (await widget(page).stop.isVisible()), 'thinking, with Stop');
    expect(await reply.getAttribute('data-status')).toBe('streaming');
    expect(await reply.locator('.text').textContent()).toBe('');
    expect(await reply.getAttribute('aria-busy')).toBe('true');
    await screenshot(page, 'reply-thinking');
    await settled(page, 2, 'the reply');
    expect(await reply.locator('.thinking').isVisible()).toBe(false);
    expect(await reply.locator('.text').textContent()).toBe('Here I am.');
  });

  it('renders a reply that grows by many deltas at once only once for that frame', async () => {
    scripts.set('[burst]', () => ({ chunks: ['The real text.'], firstDelayMs: 4000 }));
    const page = await tab(cluster.user('burst'), 0, 'burst');
    await send(page, 'Burst [burst]');
    await until(async () => (await lastReply(page).getAttribute('data-id')) !== null, 'the reply’s row');
    // Forty deltas in one task, handed to the SDK as if they had come from the socket: each updates the reply's
    // row, but its Markdown is rendered once, on the next frame, with all forty.
    const result = await page.evaluate(async () => {
      const el = document.querySelector('chat-widget')!;
      const chat = el.client!;
      const li = el.shadowRoot!.querySelector<HTMLElement>('li.msg[data-role="assistant"][data-id]')!;
      const text = li.querySelector('.text')!;
      let renders = 0;
      new MutationObserver((records) => {
        renders += records.filter((r) => r.target === text && r.addedNodes.length > 0).length;
      }).observe(text, { childList: true });
      const deliver = chat.socket.listeners('message:delta');
      for (let index = 0; index < 40; index++) {
        for (const fn of deliver) fn({ conversationId: el.conversationId!, messageId: li.dataset.id!, index, text: `w${index} ` });
      }
      const sameTask = text.textContent;
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      return { sameTask, renders, after: text.textContent };
    });
    expect(result.sameTask).toBe('');
    expect(result.renders).toBe(1);
    expect(result.after).toBe(Array.from({ length: 40 }, (_, i) => `w${i} `).join(''));
    // The stored reply wins once it ends.
    await settled(page, 2, 'the reply');
    expect(await lastReply(page).locator('.text').textContent()).toBe('The real text.');
  });

  it('holds the next message back until the reply ends; Esc stops it; exchanges never interleave', async () => {
    scripts.set('[long]', () => ({ chunks: Array.from({ length: 60 }, (_, i) => `word${i} `), delayMs: 100 }));
    const user = cluster.user('waits');
    const page = await tab(user, 1, 'waits');
    const sends = await recordSends(page);
    const w = widget(page);
    await send(page, 'First question [long]');
    await until(async () => ((await lastReply(page).locator('.text').textContent()) ?? '').length > 10, 'the reply streaming');
    expect(await w.send.getAttribute('aria-disabled')).toBe('true');
    expect(await w.hint.textContent()).toContain('The assistant is answering');

    await w.input.fill('Second question');
    await w.input.press('Enter');
    // Forced: Playwright itself waits for an aria-disabled button; a user can still click it.
    await w.send.click({ force: true });
    // Handled in the page before press and click returned: had it been sent, it would be in the box no more.
    expect(await w.input.inputValue()).toBe('Second question');
    expect(await sends()).toHaveLength(1);
    expect(await w.messages.count()).toBe(2);
    await screenshot(page, 'reply-send-waits');

    await w.input.press('Escape');
    await until(async () => (await lastReply(page).getAttribute('data-status')) === 'stopped', 'the reply stopped by Esc');
    expect(await w.send.getAttribute('aria-disabled')).toBe('false');
    await w.input.press('Enter');
    const shown = await settled(page, 4, 'the second exchange');
    expect(shown.map((m) => [m.seq, m.role, m.status])).toEqual([
      [1, 'user', 'complete'],
      [2, 'assistant', 'stopped'],
      [3, 'user', 'complete'],
      [4, 'assistant', 'complete'],
    ]);
    expect(shown[3]!.text).toBe('re: Second question');
    expect(await sends()).toHaveLength(2);
  });

  it('a message sent while offline shows as pending and is delivered once, with its clientMessageId, on reconnect', async () => {
    const user = cluster.user('offline');
    const page = await tab(user, 0, 'offline');
    const sends = await recordSends(page);
    const w = widget(page);
    await page.context().setOffline(true);
    await until(async () => (await w.status.textContent()) === 'Reconnecting…', 'reconnecting');
    await send(page, 'Written on the train');
    const pending = w.messages.first();
    await until(async () => (await pending.getAttribute('data-status')) === 'pending', 'the pending message');
    expect(await pending.locator('.text').textContent()).toBe('Written on the train');
    expect(await pending.locator('.note').textContent()).toBe('Not sent yet: it goes out when the connection is back.');
    expect(await w.send.getAttribute('aria-disabled')).toBe('true');
    expect(await w.input.inputValue()).toBe('');
    await screenshot(page, 'reply-offline-pending');
    expect(await sends()).toEqual([]);
    expect((await api('/api/conversations', user)).conversations).toEqual([]);

    await page.context().setOffline(false);
    const shown = await settled(page, 2, 'the message delivered and answered');
    expect(shown.map((m) => [m.seq, m.role, m.text])).toEqual([
      [1, 'user', 'Written on the train'],
      [2, 'assistant', 're: Written on the train'],
    ]);
    const { conversations } = await api('/api/conversations', user);
    expect(conversations).toHaveLength(1);
    const { messages } = await api(`/api/conversations/${conversations[0].id}/messages`, user);
    expect(messages.filter((m: { role: string }) => m.role === 'user')).toEqual([
      expect.objectContaining({ content: 'Written on the train', clientMessageId: (await sends())[0] }),
    ]);
    expect(await sends()).toHaveLength(1);
  });
});

describe('tool calls', () => {
  it('every tab of the user, on both nodes, sees the calls as chips, and a tab opened later sees them from history', async () => {
    scripts.set('[todo]', (results) =>
      results === 0
        ? {
            toolCalls: [
              { name: 'add_task', arguments: { title: 'Buy milk' } },
              { name: 'complete_task', arguments: { task_id: 987654 } },
            ],
          }
        : { chunks: ['Added **Buy milk** to your list.', ' I could not find task 987654.'], delayMs: 30 },
    );
    const user = cluster.user('tools');
    const [A, B] = await Promise.all([tab(user, 0, 'tools-A'), tab(user, 1, 'tools-B')]);
    await send(A, 'Add buy milk and finish task 987654 [todo]');
    const item = widget(B).conversation('Add buy milk');
    await until(async () => (await item.count()) === 1, 'the conversation in B’s list');
    await item.locator('.conv-open').click();
    for (const page of [A, B]) await settled(page, 2, 'the reply with its tool calls');

    for (const page of [A, B]) {
      const chips = lastReply(page).locator('.tools li');
      expect(await chips.allTextContents()).toEqual(['Added a task', 'Could not complete a task']);
      expect(await chips.evaluateAll((els) => els.map((el) => (el as HTMLElement).dataset.status))).toEqual(['complete', 'failed']);
      expect(await chips.nth(1).getAttribute('title')).toBe('The tool reported an error.');
      expect(await lastReply(page).locator('.text strong').textContent()).toBe('Buy milk');
    }
    // The task is the user's, in the todo server's own table.
    const tasks = await cluster.db.query<{ title: string }>('select title from todo.tasks where user_id = $1', [user]);
    expect(tasks.map((t) => t.title)).toEqual(['Buy milk']);
    // Announced with the tools' words and the reply's, without the Markdown marks.
    await expect
      .poll(() => widget(A).live.textContent())
      .toContain('Assistant: Added a task, Could not complete a task. Added Buy milk to your list. I could not find task 987654.');
    await Promise.all([screenshot(A, 'reply-tools-A'), screenshot(B, 'reply-tools-B')]);

    const C = await tab(user, 1, 'tools-C');
    await settled(C, 2, 'the conversation restored in a new tab');
    expect(await lastReply(C).locator('.tools li').allTextContents()).toEqual(['Added a task', 'Could not complete a task']);
  });

  it('a call shows as running in both tabs while it runs, then as done; a tool of another server gets a plain label', async () => {
    scripts.set('[slow-tool]', (results) =>
      results === 0 ? { toolCalls: [{ name: 'lab_slow', arguments: {} }] } : { chunks: ['That took a while.'] },
    );
    const user = cluster.user('running');
    const [A, B] = await Promise.all([tab(user, 0, 'running-A'), tab(user, 1, 'running-B')]);
    await send(A, 'Do the slow thing [slow-tool]');
    const item = widget(B).conversation('Do the slow thing');
    await until(async () => (await item.count()) === 1, 'the conversation in B’s list');
    await item.locator('.conv-open').click();
    // The call takes SLOW_TOOL_MS: both tabs see it running at once.
    const chip = (page: Page) => lastReply(page).locator('.tools li');
    await until(async () => {
      const states = await Promise.all(
        [A, B].map(async (p) => `${await chip(p).getAttribute('data-status')}:${await chip(p).textContent()}`),
      );
      return states.every((st) => st === 'running:Using lab_slow…');
    }, 'the call running in both tabs');
    expect(await lastReply(A).locator('.thinking').isVisible()).toBe(false);
    await Promise.all([screenshot(A, 'reply-tool-running-A'), screenshot(B, 'reply-tool-running-B')]);
    for (const page of [A, B]) await settled(page, 2, 'the reply');
    for (const page of [A, B]) {
      expect(await chip(page).textContent()).toBe('Used lab_slow');
      expect(await chip(page).getAttribute('data-status')).toBe('complete');
    }
    expect(await shownMessages(B)).toEqual(await shownMessages(A));
  });
});
