/**
 * The sidebar: the user's conversations, newest activity first, with unread marks, paging, and in-place rename
 * and delete (each row switches between viewing, editing its title and confirming its deletion).
 */
import type { ChatClient, ConversationDto } from '../sdk/index.ts';
import { h, ICONS } from './dom.ts';
import type { Feedback } from './feedback.ts';
import { KeyedList } from './keyed-list.ts';
import type { WidgetRefs } from './template.ts';

/** How many conversations one page of the list holds. */
const LIST_PAGE = 30;

/** What the sidebar needs from the element that holds it. */
export interface SidebarHost {
  client(): ChatClient | undefined;
  /** The open conversation; null for a new one not yet sent. */
  openConversationId(): string | null;
  open(conversationId: string | null, quiet: boolean): Promise<void>;
  focusComposer(options?: FocusOptions): void;
  /** The first page of the list arrived (once per client): the place to reopen the last conversation. */
  firstPageListed(conversations: ConversationDto[]): void;
  scheduleRender(): void;
}

type SidebarRefs = Pick<WidgetRefs, 'newButton' | 'convs' | 'emptyConvs' | 'moreConvs'>;
type RowMode = 'view' | 'edit' | 'confirm';

export function titleOf(c: ConversationDto): string {
  return c.title?.trim() || 'Untitled conversation';
}

export class ConversationSidebar {
  private readonly ui: SidebarRefs;
  private readonly host: SidebarHost;
  private readonly feedback: Feedback;
  private readonly rows: KeyedList<ConversationDto>;
  private listed = false;
  private nextCursor: string | null = null;
  private editing: string | null = null;
  private confirming: string | null = null;
  /** The lastSeq of each conversation the user has seen; higher ones are marked unread. */
  private readonly seen = new Map<string, number>();
  /** Deleted from this tab: the deletion then needs no "deleted in another window" notice. */
  private readonly deletingHere = new Set<string>();

  constructor(ui: SidebarRefs, host: SidebarHost, feedback: Feedback) {
    this.ui = ui;
    this.host = host;
    this.feedback = feedback;
    this.rows = new KeyedList(ui.convs, {
      key: (c) => c.id,
      create: (c) => h('li', { class: 'conv', attrs: { 'data-id': c.id } }),
      update: (li, c) => this.updateRow(li, c),
    });
    this.wireDom();
  }

  /** Whether the first page has arrived for the current client. */
  get hasListed(): boolean {
    return this.listed;
  }

  reset(): void {
    this.listed = false;
    this.nextCursor = null;
    this.editing = this.confirming = null;
    this.seen.clear();
    this.rows.clear();
  }

  /** Loads the first page (`first`, also after a reconnect) or the next one. */
  async load(first: boolean): Promise<void> {
    const chat = this.host.client();
    if (!chat) return;
    this.ui.moreConvs.disabled = true;
    try {
      const page = await chat.listConversations({ limit: LIST_PAGE, cursor: first ? null : this.nextCursor });
      if (chat !== this.host.client()) return;
      this.nextCursor = page.nextCursor;
      // What existed before this page counts as read.
      for (const c of page.conversations) if (!this.seen.has(c.id)) this.seen.set(c.id, c.lastSeq);
      if (first && !this.listed) {
        this.listed = true;
        this.host.firstPageListed(page.conversations);
      }
    } catch (err) {
      if (chat === this.host.client()) this.feedback.showError(err);
    } finally {
      this.ui.moreConvs.disabled = false;
      if (chat === this.host.client()) this.host.scheduleRender();
    }
  }

  /** A conversation is new or changed: what it holds when first heard of counts as seen. */
  conversationChanged(c: ConversationDto): void {
    if (c.id === this.host.openConversationId() || !this.seen.has(c.id)) this.seen.set(c.id, c.lastSeq);
  }

  markRead(conversationId: string, lastSeq: number): void {
    this.seen.set(conversationId, lastSeq);
  }

  /** A conversation was deleted; true when this tab deleted it. */
  deleted(conversationId: string): boolean {
    return this.deletingHere.delete(conversationId);
  }

  /** Leaves any rename or delete confirmation in progress (another conversation is being opened). */
  closeEditors(): void {
    this.editing = this.confirming = null;
  }

  /** Focuses a conversation's row, or the "New chat" button for null. */
  focus(conversationId: string | null): void {
    if (conversationId === null) this.ui.newButton.focus();
    else this.rows.get(conversationId)?.querySelector<HTMLElement>('.conv-open')?.focus();
  }

  render(): void {
    const conversations = this.host.client()?.conversations() ?? [];
    const current = this.host.openConversationId();
    // The open conversation is read as it is shown: it never shows as unread.
    const open = conversations.find((c) => c.id === current);
    if (open) this.seen.set(open.id, open.lastSeq);
    const shadow = this.ui.convs.getRootNode() as ShadowRoot;
    const focused = shadow.activeElement as HTMLElement | null;
    const focusedIn = focused?.closest<HTMLElement>('.conv')?.dataset.id;
    const focusedAction = focused?.dataset.action;
    this.rows.render(conversations);
    // Moving a node drops its focus, and so does rebuilding a row: give it back.
    if (focused && shadow.activeElement !== focused) {
      if (focused.isConnected) focused.focus();
      else if (focusedIn && focusedAction)
        this.rows.get(focusedIn)?.querySelector<HTMLElement>(`[data-action="${focusedAction}"]`)?.focus();
    }
    this.ui.emptyConvs.hidden = conversations.length > 0 || !this.listed;
    this.ui.moreConvs.hidden = !this.nextCursor;
  }

  private updateRow(li: HTMLLIElement, c: ConversationDto): void {
    const mode: RowMode = this.editing === c.id ? 'edit' : this.confirming === c.id ? 'confirm' : 'view';
    const title = titleOf(c);
    const isCurrent = c.id === this.host.openConversationId();
    li.setAttribute('aria-current', String(isCurrent));
    if (mode === 'view' && li.dataset.mode === 'view' && li.dataset.title !== title) {
      // A new title: changed in place, so a focused button keeps its focus.
      li.dataset.title = title;
      li.querySelector('.conv-title')!.textContent = title;
      li.querySelector('[data-action="rename"]')!.setAttribute('aria-label', `Rename “${title}”`);
      li.querySelector('[data-action="delete"]')!.setAttribute('aria-label', `Delete “${title}”`);
    } else if (li.dataset.mode !== mode || (mode === 'confirm' && li.dataset.title !== title)) {
      li.dataset.mode = mode;
      li.dataset.title = title;
      li.replaceChildren(...rowContent(mode, c, title));
    }
    const open = li.querySelector<HTMLButtonElement>('.conv-open');
    if (open) {
      if (isCurrent) open.setAttribute('aria-current', 'true');
      else open.removeAttribute('aria-current');
      const unread = !isCurrent && c.lastSeq > (this.seen.get(c.id) ?? c.lastSeq);
      li.querySelector<HTMLElement>('.unread')!.hidden = !unread;
      li.querySelector<HTMLElement>('.unread-label')!.hidden = !unread;
    }
  }

  private startEditing(conversationId: string, mode: Exclude<RowMode, 'view'>): void {
    this.editing = mode === 'edit' ? conversationId : null;
    this.confirming = mode === 'confirm' ? conversationId : null;
    this.render();
  }

  private stopEditing(conversationId: string): void {
    this.closeEditors();
    this.render();
    this.focus(conversationId);
  }

  private async rename(conversationId: string, title: string): Promise<void> {
    const chat = this.host.client();
    this.editing = null;
    this.render();
    this.focus(conversationId);
    if (!chat) return;
    try {
      await chat.renameConversation(conversationId, title.trim() || null);
    } catch (err) {
      this.feedback.showError(err);
    }
  }

  private async delete(conversationId: string): Promise<void> {
    const chat = this.host.client();
    if (!chat) return;
    const ids = chat.conversations().map((c) => c.id);
    const next = ids[ids.indexOf(conversationId) + 1] ?? ids[ids.indexOf(conversationId) - 1];
    this.confirming = null;
    this.deletingHere.add(conversationId);
    try {
      await chat.deleteConversation(conversationId);
      this.focus(next ?? null);
    } catch (err) {
      this.deletingHere.delete(conversationId);
      this.feedback.showError(err);
      this.render();
    }
  }

  private wireDom(): void {
    const { ui, host } = this;
    ui.newButton.addEventListener('click', () => {
      void host.open(null, false);
      host.focusComposer();
    });
    ui.moreConvs.addEventListener('click', () => void this.load(false));
    ui.convs.addEventListener('click', (e) => {
      const target = (e.target as Element).closest<HTMLElement>('[data-action]');
      const id = target?.closest<HTMLElement>('.conv')?.dataset.id;
      if (!target || !id) return;
      switch (target.dataset.action) {
        case 'open':
          void host.open(id, false).then(() => {
            if (host.openConversationId() === id) host.focusComposer({ preventScroll: true });
          });
          break;
        case 'rename': {
          this.startEditing(id, 'edit');
          const input = this.rows.get(id)?.querySelector<HTMLInputElement>('input');
          input?.focus();
          input?.select();
          break;
        }
        case 'delete':
          this.startEditing(id, 'confirm');
          this.rows.get(id)?.querySelector<HTMLElement>('[data-action="cancel"]')?.focus();
          break;
        case 'confirm-delete':
          void this.delete(id);
          break;
        case 'cancel':
          this.stopEditing(id);
          break;
      }
    });
    ui.convs.addEventListener('submit', (e) => {
      e.preventDefault();
      const form = e.target as HTMLFormElement;
      const id = form.closest<HTMLElement>('.conv')?.dataset.id;
      const input = form.querySelector('input');
      if (id && input) void this.rename(id, input.value);
    });
    ui.convs.addEventListener('keydown', (e) => {
      const target = e.target as HTMLElement;
      const id = target.closest<HTMLElement>('.conv')?.dataset.id;
      if (!id) return;
      if (e.key === 'Escape' && (this.editing === id || this.confirming === id)) {
        e.preventDefault();
        this.stopEditing(id);
      } else if ((e.key === 'ArrowDown' || e.key === 'ArrowUp') && target.classList.contains('conv-open')) {
        // Arrow keys move between conversations; Tab reaches their rename and delete buttons.
        e.preventDefault();
        const buttons = [...ui.convs.querySelectorAll<HTMLElement>('.conv-open')];
        const i = buttons.indexOf(target) + (e.key === 'ArrowDown' ? 1 : -1);
        buttons[Math.max(0, Math.min(buttons.length - 1, i))]?.focus();
      }
    });
  }
}

/** A row's children in one of its three modes. */
function rowContent(mode: RowMode, c: ConversationDto, title: string): HTMLElement[] {
  if (mode === 'view') {
    return [
      h(
        'button',
        { class: 'conv-open', attrs: { type: 'button', 'data-action': 'open' } },
        h('span', { class: 'unread', attrs: { 'aria-hidden': 'true' } }),
        h('span', { class: 'conv-title', text: title }),
        h('span', { class: 'sr-only unread-label', text: ', new messages' }),
      ),
      h(
        'span',
        { class: 'conv-actions' },
        iconButton('rename', ICONS.pencil, `Rename “${title}”`, 'Rename'),
        iconButton('delete', ICONS.trash, `Delete “${title}”`, 'Delete'),
      ),
    ];
  }
  if (mode === 'edit') {
    const input = h('input', { attrs: { type: 'text', maxlength: '200', 'aria-label': 'New title', 'data-role': 'title-input' } });
    input.value = c.title ?? '';
    return [
      h(
        'form',
        { class: 'conv-edit', attrs: { 'data-action': 'rename-form' } },
        input,
        h('button', { class: 'accent', text: 'Save', attrs: { type: 'submit' } }),
        h('button', { text: 'Cancel', attrs: { type: 'button', 'data-action': 'cancel' } }),
      ),
    ];
  }
  return [
    h(
      'div',
      { class: 'conv-confirm', attrs: { role: 'group', 'aria-label': `Delete “${title}”?` } },
      h('span', { text: `Delete “${title}”?` }),
      h('button', { class: 'danger', text: 'Delete', attrs: { type: 'button', 'data-action': 'confirm-delete' } }),
      h('button', { text: 'Cancel', attrs: { type: 'button', 'data-action': 'cancel' } }),
    ),
  ];
}

function iconButton(action: string, icon: string, label: string, tooltip: string): HTMLButtonElement {
  return h('button', { class: 'icon', html: icon, attrs: { type: 'button', 'data-action': action, 'aria-label': label, title: tooltip } });
}
