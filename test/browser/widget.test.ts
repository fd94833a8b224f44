// The widget in real headless Chromium against two gateway nodes sharing PostgreSQL and Redis: tabs of one user,
// each on a different node, and a tab of another user. The tabs are pages of another site embedding the widget as
// the integration snippet does (startEmbeddingSite): the bundle comes cross-origin from the node
// (/widget/chat-widget.js), the site's origin is in the nodes' CORS_ORIGINS, and the token is set by the page
// (`widget.token = …`) or fetched from the site's backend (`widget.getToken`).
// Every test makes its own users, tabs and conversations, so any one runs alone (`-t`) and a failure stays its own.
// Every step leaves a screenshot in test-artifacts/browser/.
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import {
  ensureWidgetBuilt,
  launchChromium,
  online,
  screenshot,
  send,
  settled,
  shownMessages,
  startEmbeddingSite,
  Tabs,
  until,
  widget,
  type EmbeddingSite,
  type ShownMessage,
} from './helpers.ts';

// Echo paced at 60 ms a word: a reply streams visibly over several deltas (coalesced every ~50 ms).
const ENV = { ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '60' };
const words = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}${i}`).join(' ');

let cluster: Cluster;
let site: EmbeddingSite;
let browser: Browser;
let tabs: Tabs;

beforeAll(async () => {
  site = await startEmbeddingSite((user) => cluster.tokenFor(user));
  [cluster] = await Promise.all([startCluster({ nodes: 2, env: { ...ENV, CORS_ORIGINS: site.origin } }), ensureWidgetBuilt()]);
  const bundle = await fetch(`${cluster.nodes[0]!.url}/widget/chat-widget.js`);
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
  // Uncaught exceptions in any page fail the test that caused them.
  expect(errors).toEqual([]);
});

afterAll(async () => {
  await tabs?.closeAll();
  await browser?.close();
  await cluster?.close();
  await site?.close();
});

/**
 * Two tabs of a new user: A on node 0 with `widget.token` and no `server` attribute (the widget uses its script's
 * origin), B on node 1 with `widget.getToken` asking the site's backend.
 */
async function twoTabs(label: string): Promise<{ user: string; A: Page; B: Page }> {
  const user = cluster.user(label);
  const [A, B] = await Promise.all([
    tabs.open(site.pageUrl({ user, gatewayUrl: cluster.nodes[0]!.url, auth: 'token', server: false }), `${label}-A`),
    tabs.open(site.pageUrl({ user, gatewayUrl: cluster.nodes[1]!.url, auth: 'getToken' }), `${label}-B`),
  ]);
  return { user, A, B };
}

/** Sends the first message of a conversation from A; B opens it from its list once it appears there, live. */
async function startConversation(A: Page, B: Page, text: string): Promise<{ conversationId: string; shown: ShownMessage[] }> {
  await send(A, text);
  const shown = await settled(A, 2, `the first exchange in A (${text})`);
  const conversationId = (await A.evaluate(() => document.querySelector('chat-widget')!.conversationId))!;
  const item = widget(B).conversation(text);
  await until(async () => (await item.count()) === 1, `"${text}" in B’s list`);
  await item.locator('.conv-open').click();
  expect(await settled(B, 2, `the first exchange in B (${text})`)).toEqual(shown);
  return { conversationId, shown };
}

const last = (ms: ShownMessage[]) => ms[ms.length - 1];

/**
 * Records, in the page, every state the last assistant message goes through (status and text length), from
 * the widget's DOM mutations: proof of streaming that does not depend on when the test happens to look.
 */
async function recordReply(page: Page): Promise<void> {
  await page.evaluate(() => {
    const root = document.querySelector('chat-widget')!.shadowRoot!;
    const w = window as unknown as { replyStates: string[] };
    w.replyStates = [];
    new MutationObserver(() => {
      const items = root.querySelectorAll<HTMLElement>('li.msg[data-role="assistant"]');
      const li = items[items.length - 1];
      if (!li) return;
      const state = `${li.dataset.status}:${li.querySelector('.text')?.textContent?.length ?? 0}`;
      if (w.replyStates[w.replyStates.length - 1] !== state) w.replyStates.push(state);
    }).observe(root, { subtree: true, childList: true, characterData: true, attributes: true });
  });
}

async function replyStates(page: Page): Promise<{ status: string; length: number }[]> {
  const states = await page.evaluate(() => (window as unknown as { replyStates: string[] }).replyStates);
  return states.map((s) => ({ status: s.split(':')[0]!, length: Number(s.split(':')[1]) }));
}

async function api(path: string, user: string, init: RequestInit = {}, node = 0) {
  const res = await fetch(`${cluster.nodes[node]!.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${cluster.tokenFor(user)}`, 'content-type': 'application/json', ...init.headers },
  });
  return { status: res.status, body: res.status === 204 ? undefined : await res.json() };
}

describe('two tabs of one user on two nodes', () => {
  it('a message sent in one tab appears in the other', async () => {
    const { A, B } = await twoTabs('alice');
    await send(A, 'Hello from tab A');
    const inA = await settled(A, 2, 'the first exchange in A');
    expect(inA.map((m) => [m.seq, m.role, m.status, m.text])).toEqual([
      [1, 'user', 'complete', 'Hello from tab A'],
      [2, 'assistant', 'complete', 'Echo: Hello from tab A'],
    ]);
    expect(await A.evaluate(() => document.querySelector('chat-widget')!.conversationId)).toMatch(/^[0-9a-f-]{36}$/);

    // B learns of the new conversation live, and opens it from its list.
    const item = widget(B).conversation('Hello from tab A');
    await until(async () => (await item.count()) === 1, 'the conversation in B’s list');
    await screenshot(B, '01-B-list-updated-live');
    await item.locator('.conv-open').click();
    expect(await settled(B, 2, 'the first exchange in B')).toEqual(inA);
    await screenshot(A, '01-A-sent');
    await screenshot(B, '01-B-received');
  });

  it('the assistant reply streams in both tabs', async () => {
    const { A, B } = await twoTabs('stream');
    await startConversation(A, B, 'Start streaming');
    await Promise.all([recordReply(A), recordReply(B)]);
    const content = `Stream ${words(30, 's')}`;
    await send(A, content);
    // Both mid-stream at once, for the screenshots.
    await until(async () => {
      const [a, b] = await Promise.all([shownMessages(A), shownMessages(B)]);
      const ok = (m?: ShownMessage) => m?.status === 'streaming' && m.text.length > 20;
      return ok(last(a)) && ok(last(b));
    }, 'the reply streaming in both tabs');
    await Promise.all([screenshot(A, '02-A-streaming'), screenshot(B, '02-B-streaming')]);
    const [a, b] = await Promise.all([settled(A, 4, 'the reply complete in A'), settled(B, 4, 'the reply complete in B')]);
    expect(a).toEqual(b);
    expect(last(a)).toMatchObject({ seq: 4, role: 'assistant', status: 'complete', text: `Echo: ${content}` });
    for (const page of [A, B]) {
      const states = await replyStates(page);
      const partial = new Set(
        states.filter((s) => s.status === 'streaming' && s.length > 0 && s.length < `Echo: ${content}`.length).map((s) => s.length),
      );
      // The text grew in several visible steps before it was complete.
      expect(partial.size, JSON.stringify(states)).toBeGreaterThanOrEqual(3);
      expect(states[states.length - 1]).toEqual({ status: 'complete', length: `Echo: ${content}`.length });
    }
  });

  it('Stop pressed in the second tab stops the reply started in the first', async () => {
    const { user, A, B } = await twoTabs('stop');
    const { conversationId } = await startConversation(A, B, 'Before the long one');
    const content = `Long ${words(150, 'w')}`;
    await send(A, content);
    const stop = widget(B).stop;
    await until(async () => {
      const m = last(await shownMessages(B));
      return m?.seq === 4 && m.status === 'streaming' && m.text.length > 30 && (await stop.isVisible());
    }, 'the reply streaming in B, with its Stop button');
    await stop.click();
    const [a, b] = await Promise.all([settled(A, 4, 'the stopped reply in A'), settled(B, 4, 'the stopped reply in B')]);
    expect(a).toEqual(b);
    const reply = last(a)!;
    expect(reply.status).toBe('stopped');
    expect(`Echo: ${content}`.startsWith(reply.text)).toBe(true);
    expect(reply.text.length).toBeLessThan(`Echo: ${content}`.length);
    expect(await widget(A).stop.isVisible()).toBe(false);
    await expect.poll(() => widget(A).root.locator('li.msg[data-status="stopped"] .note').textContent()).toBe('Stopped');
    // What the tabs show is what was stored.
    const { body } = await api(`/api/conversations/${conversationId}/messages`, user);
    expect(body.messages.at(-1)).toMatchObject({ seq: 4, status: 'stopped', content: reply.text });
    await Promise.all([screenshot(A, '03-A-stopped'), screenshot(B, '03-B-stopped-here')]);
  });

  it('a reload restores the history', async () => {
    const { B } = await twoTabs('reload');
    await send(B, 'Remember me');
    const before = await settled(B, 2, 'the exchange before the reload');
    await B.reload();
    await online(B);
    expect(await settled(B, before.length, 'the history after the reload')).toEqual(before);
    expect(await widget(B).title.textContent()).toBe('Remember me');
    await screenshot(B, '04-B-reloaded');
  });

  it('older messages load when scrolling up', async () => {
    const { user, B } = await twoTabs('older');
    // 30 exchanges (60 messages) written over REST: the widget first shows the latest 50.
    const { body } = await api('/api/conversations', user, { method: 'POST', body: JSON.stringify({ title: 'Long history' }) });
    const longId: string = body.conversation.id;
    for (let i = 1; i <= 30; i++) {
      const res = await api(`/api/conversations/${longId}/messages`, user, { method: 'POST', body: JSON.stringify({ content: `m${i}` }) });
      expect(res.status).toBe(201);
    }
    await until(async () => {
      const { body: page } = await api(`/api/conversations/${longId}/messages?limit=100`, user);
      return page.messages.length === 60 && page.messages.every((m: { status: string }) => m.status === 'complete');
    }, '60 stored messages');
    const item = widget(B).conversation('Long history');
    await until(async () => (await item.count()) === 1, 'the REST-created conversation in B’s list');
    await item.locator('.conv-open').click();
    const first = await settled(B, 50, 'the latest page');
    expect(first[0]!.seq).toBe(11);
    await B.locator('chat-widget .scroller').evaluate((el) => el.scrollTo({ top: 0 }));
    const all = await settled(B, 60, 'the older page after scrolling up');
    expect(all.map((m) => m.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(all.slice(0, 2).map((m) => m.text)).toEqual(['m1', 'Echo: m1']);
    await screenshot(B, '05-B-older-loaded');
  });

  it('a tab taken offline shows it, and catches up without gaps or duplicates when back online', async () => {
    const { A, B } = await twoTabs('offline');
    await startConversation(A, B, 'Before going offline');
    const w = widget(A);
    const shownBefore = await shownMessages(A);
    await A.context().setOffline(true);
    await until(
      async () => (await w.status.textContent()) === 'Reconnecting…' && (await w.banner.isVisible()),
      'the reconnecting state in A',
    );
    expect(await w.banner.textContent()).toContain('Reconnecting');
    await screenshot(A, '06-A-offline');

    await send(B, 'Sent while A was offline');
    await settled(B, 4, 'the exchange in B');
    await send(B, `And one more ${words(5, 'x')}`);
    const inB = await settled(B, 6, 'the second exchange in B');
    // A is offline: nothing can reach it, so this shows it really was away (no barrier needed).
    expect(await shownMessages(A)).toEqual(shownBefore);

    await A.context().setOffline(false);
    await until(async () => (await w.status.textContent()) === 'Online', 'A back online');
    const inA = await settled(A, 6, 'A caught up');
    expect(inA).toEqual(inB);
    expect(inA.map((m) => m.seq)).toEqual(Array.from({ length: 6 }, (_, i) => i + 1));
    const ids = await A.locator('chat-widget li.msg').evaluateAll((els) => els.map((el) => (el as HTMLElement).dataset.id));
    expect(new Set(ids).size).toBe(6);
    await until(async () => (await w.banner.textContent())?.includes('Back online'), 'the back-online banner');
    await screenshot(A, '06-A-caught-up');
  });

  it("another user's tab sees none of it", async () => {
    const { user: alice, A, B } = await twoTabs('alice');
    const bob = cluster.user('bob');
    const C = await tabs.open(site.pageUrl({ user: bob, gatewayUrl: cluster.nodes[0]!.url, auth: 'token' }), 'bob-C');
    await startConversation(A, B, 'Alice’s secret');
    await api('/api/conversations', alice, { method: 'POST', body: JSON.stringify({ title: 'Alice’s other one' }) }, 1);

    // Barriers: a conversation of bob's created on each node after everything of alice's was published there. A
    // node publishes in order and every tab gets its node's events in order, so once C shows both, anything of
    // alice's wrongly sent to C would have arrived before them.
    await barrier(bob, [C], 'bob');
    const w = widget(C);
    expect(await w.conversations.count()).toBe(2);
    expect(await shownMessages(C)).toEqual([]);
    const text = await C.locator('chat-widget').evaluate((el) => el.shadowRoot!.textContent ?? '');
    expect(text).not.toContain('Alice’s secret');
    expect(text).not.toContain('Alice’s other one');

    // And the other way round: bob's conversation stays his.
    await send(C, 'Bob here');
    await settled(C, 2, 'bob’s exchange');
    await barrier(alice, [A, B], 'alice');
    expect(await widget(A).conversation('Bob here').count()).toBe(0);
    expect(await widget(B).conversation('Bob here').count()).toBe(0);
    await screenshot(C, '07-C-other-user');
  });
});

/** Creates a conversation of `user` through each node, and waits until every one of `pages` lists both. */
async function barrier(user: string, pages: Page[], label: string): Promise<void> {
  const titles = await Promise.all(
    cluster.nodes.map(async (_, node) => {
      const title = `barrier ${label} ${node} ${Date.now()}`;
      const res = await api('/api/conversations', user, { method: 'POST', body: JSON.stringify({ title }) }, node);
      expect(res.status).toBe(201);
      return title;
    }),
  );
  for (const page of pages) {
    for (const title of titles) {
      await until(async () => (await widget(page).conversation(title).count()) === 1, `"${title}" listed`);
    }
  }
}
