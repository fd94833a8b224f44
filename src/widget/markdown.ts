/**
 * The assistant's replies as Markdown: parsed by `marked` (GitHub's dialect), sanitised by DOMPurify, and shown as
 * DOM nodes, never as HTML strings put into the page.
 *
 * A model's text is not trusted: a prompt injection can make it write anything. So, in two layers:
 * - the renderer turns raw HTML in the text into visible text (a `<script>` reads as `<script>`), shows images as
 *   links (an image loads from wherever the model says, and its URL can carry the conversation away), and writes
 *   task-list boxes as characters;
 * - DOMPurify then keeps only the elements and attributes Markdown produces, and only `http:`, `https:` and
 *   `mailto:` links, which open in a new tab with `rel="noopener noreferrer"`. A link it refuses becomes its text.
 *   Its output is a DOM fragment, so nothing is parsed again after sanitising (no mutation-XSS round trip).
 */
import DOMPurify, { type Config } from 'dompurify';
import { Marked, type Tokens } from 'marked';
import { h } from './dom.ts';

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const marked = new Marked({
  gfm: true,
  // A chat model's single line breaks are meant as line breaks.
  breaks: true,
  renderer: {
    html(token: Tokens.HTML | Tokens.Tag) {
      const text = escapeHtml(token.text);
      return token.block ? `<p>${text.trim().replace(/\n/g, '<br>')}</p>` : text;
    },
    image({ href, text }: Tokens.Image) {
      return `<a href="${escapeHtml(href)}">${escapeHtml(text || href)}</a>`;
    },
    checkbox({ checked }: Tokens.Checkbox) {
      return checked ? '☑ ' : '☐ ';
    },
  },
});

const purifier = DOMPurify(window);
const SANITIZE: Config & { RETURN_DOM_FRAGMENT: true } = {
  // What Markdown produces, nothing else.
  ALLOWED_TAGS: 'p br hr h1 h2 h3 h4 h5 h6 strong em del code pre blockquote ul ol li a table thead tbody tr th td'.split(' '),
  ALLOWED_ATTR: ['href', 'title', 'class', 'start', 'align'],
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  ALLOWED_URI_REGEXP: /^(?:https?|mailto):/i,
  RETURN_DOM_FRAGMENT: true,
};
const LANGUAGE_CLASS = /^language-[\w+#.-]{1,32}$/;

purifier.addHook('afterSanitizeAttributes', (node) => {
  // Classes would reach the widget's own styles (a model could hide text with `sr-only`): only a code block's
  // language survives.
  const cls = node.getAttribute('class');
  if (cls !== null && !(node.tagName === 'CODE' && LANGUAGE_CLASS.test(cls))) node.removeAttribute('class');
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

/**
 * The reply's text as sanitised DOM: top-level blocks only (no whitespace between them), code blocks wrapped with
 * their language and a copy button (`button.copy-code`, handled by whoever holds the message list).
 */
export function renderMarkdown(text: string): DocumentFragment {
  const fragment = purifier.sanitize(marked.parse(text, { async: false }), SANITIZE);
  // A link whose address was refused keeps its words.
  for (const a of fragment.querySelectorAll('a:not([href])')) a.replaceWith(...a.childNodes);
  for (const node of [...fragment.childNodes]) {
    if (node.nodeType === Node.TEXT_NODE && !node.textContent?.trim()) node.remove();
  }
  for (const pre of fragment.querySelectorAll('pre')) {
    const language = pre.querySelector('code')?.className.replace(/^language-/, '') ?? '';
    const wrap = h(
      'div',
      { class: 'code' },
      h(
        'div',
        { class: 'code-head' },
        h('span', { class: 'code-lang', text: language }),
        h('button', { class: 'copy-code', text: 'Copy', attrs: { type: 'button', 'aria-label': 'Copy code' } }),
      ),
    );
    pre.replaceWith(wrap);
    wrap.append(pre);
  }
  return fragment;
}

/** What a screen reader is told of a reply: its words, without Markdown's marks. */
export function plainText(markdown: string): string {
  return [...renderMarkdown(markdown).children]
    .map((el) => (el.classList.contains('code') ? (el.querySelector('pre')?.textContent ?? '') : (el.textContent ?? '')))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * Makes `container` show `fragment`, replacing only the top-level blocks that changed: while a reply streams, the
 * paragraphs above the one growing stay the same nodes (a selection in them survives; a focused copy button too).
 */
export function patchChildren(container: Element, fragment: DocumentFragment): void {
  const next = [...fragment.childNodes];
  const current = [...container.childNodes];
  for (let i = 0; i < next.length; i++) {
    const old = current[i];
    if (!old) container.append(next[i]!);
    else if (!old.isEqualNode(next[i]!)) old.replaceWith(next[i]!);
  }
  for (let i = next.length; i < current.length; i++) current[i]!.remove();
}
