/** Small DOM helpers for the widget: static markup only, user text always goes in through textContent. */

/** Builds an element; `text` is set with textContent (never parsed as HTML). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { class?: string; text?: string; attrs?: Record<string, string>; html?: string } = {},
  ...children: Node[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props.class) el.className = props.class;
  // `html` is for the widget's own constant markup (icons), never for data.
  if (props.html !== undefined) el.innerHTML = props.html;
  if (props.text !== undefined) el.textContent = props.text;
  for (const [k, v] of Object.entries(props.attrs ?? {})) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/** Feather-style line icons (constant markup). */
const svg = (paths: string) =>
  `<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">${paths}</svg>`;
export const ICONS = {
  pencil: svg('<path d="M12 20h9"/><path d="M16.5 3.5a2.12 2.12 0 0 1 3 3L7 19l-4 1 1-4Z"/>'),
  trash: svg('<path d="M3 6h18"/><path d="M8 6V4h8v2"/><path d="M19 6l-1 14H6L5 6"/><path d="M10 11v6M14 11v6"/>'),
  close: svg('<path d="M6 6l12 12M18 6L6 18"/>'),
  back: svg('<path d="M15 18l-6-6 6-6"/>'),
  plus: svg('<path d="M12 5v14M5 12h14"/>'),
} as const;

/** localStorage that never throws (storage disabled, sandboxed frames, quota). */
export const storage = {
  get(key: string): string | null {
    try {
      return globalThis.localStorage?.getItem(key) ?? null;
    } catch {
      return null;
    }
  },
  set(key: string, value: string | null): void {
    try {
      if (value === null) globalThis.localStorage?.removeItem(key);
      else globalThis.localStorage?.setItem(key, value);
    } catch {
      // Not remembering the last conversation is harmless.
    }
  },
};

/**
 * Puts `text` on the clipboard; false when the browser refused. The asynchronous Clipboard API needs a secure
 * context (https, or localhost); elsewhere the older copy command, which works from a click, is tried.
 */
export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h('textarea', { attrs: { readonly: '', 'aria-hidden': 'true', style: 'position:fixed;opacity:0' } });
    area.value = text;
    document.body.append(area);
    area.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    } finally {
      area.remove();
    }
  }
}

/** The origin a script was served from (its `import.meta.url`); undefined when not served over http(s). */
export function scriptOrigin(moduleUrl: string): string | undefined {
  try {
    const url = new URL(moduleUrl);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Properties a page set on a custom element before its class was defined are own properties that shadow the
 * class's accessors: re-applied through the accessors.
 */
export function upgradeProperties(el: HTMLElement, props: readonly string[]): void {
  const self = el as unknown as Record<string, unknown>;
  for (const prop of props) {
    if (!Object.hasOwn(el, prop)) continue;
    const value = self[prop];
    delete self[prop];
    self[prop] = value;
  }
}
