/**
 * One row of the message list: a stored message, or one of this tab's sends not stored yet (pending), or the
 * "thinking" row that stands for a reply between the send and its first words. The user's text is always plain
 * text; the assistant's is Markdown (markdown.ts), with a chip for each tool call and a copy button.
 */
import { isFinal, type MessageDto, type Role, type ToolCallDto } from '../sdk/index.ts';
import { h } from './dom.ts';
import { patchChildren, renderMarkdown } from './markdown.ts';
import type { Outgoing } from './outbox.ts';
import { timeLabel, toolFailure, toolLabel } from './wording.ts';

/** What a row shows. */
export interface RowModel {
  /** Stable across a send's life: the clientMessageId when there is one, so a pending row becomes the stored one. */
  key: string;
  message?: MessageDto;
  role: Role;
  /** A stored message's status; `pending` for a send not yet stored. */
  status: MessageDto['status'] | 'pending';
  content: string;
  createdAt: string;
  toolCalls: ToolCallDto[];
  /** A line under the bubble: why a reply ended as it did, or where a pending send is. */
  note: string;
}

/** The tool calls a reply's metadata holds, as the SDK keeps them up to date. */
function toolCallsOf(m: MessageDto): ToolCallDto[] {
  const calls = m.metadata?.toolCalls;
  return Array.isArray(calls) ? calls.filter((c): c is ToolCallDto => typeof c?.id === 'string') : [];
}

export function messageRow(m: MessageDto): RowModel {
  const note = m.status === 'stopped' ? 'Stopped' : m.status === 'failed' ? failureText(m) : '';
  const key = m.clientMessageId ? `c:${m.clientMessageId}` : `m:${m.id}`;
  return { key, message: m, role: m.role, status: m.status, content: m.content, createdAt: m.createdAt, toolCalls: toolCallsOf(m), note };
}

/** A send not stored yet: `online` says whether it is on its way or waits for the connection. */
export function pendingRow(item: Outgoing, online: boolean): RowModel {
  return {
    key: `c:${item.clientMessageId}`,
    role: 'user',
    status: 'pending',
    content: item.content,
    createdAt: item.sentAt,
    toolCalls: [],
    note: online ? 'Sending…' : 'Not sent yet: it goes out when the connection is back.',
  };
}

/** The reply to a send, before the reply's own row exists. */
export function thinkingRow(item: Outgoing): RowModel {
  return {
    key: `t:${item.clientMessageId}`,
    role: 'assistant',
    status: 'streaming',
    content: '',
    createdAt: item.sentAt,
    toolCalls: [],
    note: '',
  };
}

export function createRow(): HTMLLIElement {
  return h(
    'li',
    { class: 'msg' },
    h(
      'div',
      { class: 'bubble' },
      h('span', { class: 'sr-only who' }),
      h('ul', { class: 'tools', attrs: { 'aria-label': 'Tools used' } }),
      h('p', { class: 'thinking', text: 'Thinking' }),
      h('div', { class: 'text' }),
    ),
    h(
      'div',
      { class: 'msg-meta' },
      h('time'),
      h('span', { class: 'note' }),
      h('button', { class: 'copy-reply', text: 'Copy', attrs: { type: 'button', 'aria-label': 'Copy reply' } }),
    ),
  );
}

/**
 * Brings a row up to date. The assistant's Markdown is rendered here only when `renderText` says so (a final reply,
 * or a row seen for the first time); a reply that grows is rendered by the caller at most once a frame.
 */
export function updateRow(li: HTMLLIElement, row: RowModel, renderText: boolean): void {
  const m = row.message;
  setData(li, 'id', m?.id);
  setData(li, 'seq', m ? String(m.seq) : undefined);
  setData(li, 'role', row.role);
  setData(li, 'status', row.status);
  const streaming = row.status === 'streaming';
  li.setAttribute('aria-busy', String(streaming || row.status === 'pending'));
  const who = li.querySelector('.who')!;
  const label = row.role === 'user' ? 'You: ' : row.role === 'assistant' ? 'Assistant: ' : 'System: ';
  if (who.textContent !== label) who.textContent = label;

  updateTools(li.querySelector('.tools')!, row.toolCalls);
  const running = row.toolCalls.some((c) => c.status === 'running');
  li.querySelector<HTMLElement>('.thinking')!.hidden = !(streaming && row.content === '' && !running);
  const text = li.querySelector<HTMLElement>('.text')!;
  if (row.role !== 'assistant') {
    text.classList.remove('md');
    if (text.textContent !== row.content) text.textContent = row.content;
  } else if (renderText || !text.classList.contains('md')) {
    showMarkdown(text, row.content);
  }

  const time = li.querySelector('time')!;
  if (time.dateTime !== row.createdAt) {
    const { short, full } = timeLabel(row.createdAt);
    time.dateTime = row.createdAt;
    time.textContent = short;
    time.title = full;
  }
  const note = li.querySelector<HTMLElement>('.note')!;
  if (note.textContent !== row.note) note.textContent = row.note;
  note.hidden = !row.note;
  // Copying a reply makes sense once it is over and has words.
  li.querySelector<HTMLElement>('.copy-reply')!.hidden = !(row.role === 'assistant' && m && isFinal(m) && m.content);
}

/** Renders `content` as Markdown into `el`, unless that is what it shows already. */
export function showMarkdown(el: HTMLElement, content: string): void {
  el.classList.add('md');
  if (rendered.get(el) === content) return;
  rendered.set(el, content);
  patchChildren(el, renderMarkdown(content));
}

const rendered = new WeakMap<Element, string>();

function updateTools(list: HTMLElement, calls: ToolCallDto[]): void {
  list.hidden = calls.length === 0;
  const items = list.children;
  for (let i = 0; i < calls.length; i++) {
    const call = calls[i]!;
    let li = items[i] as HTMLLIElement | undefined;
    if (!li) {
      li = h(
        'li',
        { class: 'tool' },
        h('span', { class: 'tool-icon', attrs: { 'aria-hidden': 'true' } }),
        h('span', { class: 'tool-label' }),
      );
      list.append(li);
    }
    setData(li, 'tool', call.name);
    setData(li, 'status', call.status);
    const label = toolLabel(call);
    const labelEl = li.lastElementChild!;
    if (labelEl.textContent !== label) labelEl.textContent = label;
    const tip = call.status === 'failed' ? toolFailure(call.error) : '';
    if (li.title !== tip) li.title = tip;
  }
  while (items.length > calls.length) list.lastElementChild!.remove();
}

function setData(el: HTMLElement, name: string, value: string | undefined): void {
  if (value === undefined) delete el.dataset[name];
  else if (el.dataset[name] !== value) el.dataset[name] = value;
}

function failureText(m: MessageDto): string {
  const error = m.metadata?.error as { code?: unknown; message?: unknown } | undefined;
  if (error?.code === 'INTERRUPTED') return 'The reply was interrupted.';
  return typeof error?.message === 'string' ? `The reply failed: ${error.message}` : 'The reply failed.';
}
