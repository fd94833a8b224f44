/**
 * The widget's markup and stylesheet, and the named elements (`data-ref`) the parts of the widget drive.
 * Class names, roles and labels here are the widget's contract with pages that style it through `::part()` and
 * with tests and assistive technology that find things by role and label: change them deliberately.
 */
import { ICONS } from './dom.ts';
import { MESSAGE_CSS } from './message-styles.ts';
import { WIDGET_CSS } from './styles.ts';

const CSS = WIDGET_CSS + MESSAGE_CSS;

const TEMPLATE = /* html */ `
<div class="root" part="root" data-pane="chat">
  <div class="layout">
    <nav class="side" part="sidebar" aria-labelledby="side-title">
      <div class="side-head">
        <h2 id="side-title">Conversations</h2>
        <button type="button" class="accent new" data-ref="newButton">New chat</button>
      </div>
      <ul class="convs" data-ref="convs"></ul>
      <div class="side-foot">
        <p data-ref="emptyConvs" hidden>No conversations yet.</p>
        <button type="button" data-ref="moreConvs" hidden>Show older conversations</button>
      </div>
    </nav>
    <section class="main" part="main" aria-labelledby="conv-title">
      <header class="main-head">
        <button type="button" class="icon back" data-ref="back" aria-label="Back to conversations">${ICONS.back}</button>
        <h2 id="conv-title" data-ref="title">New conversation</h2>
        <span class="status" data-ref="status" data-status="idle">Not signed in</span>
      </header>
      <div class="banner" data-ref="banner" role="status" hidden><span data-ref="bannerText"></span><button type="button" data-ref="bannerAction" hidden></button></div>
      <div class="scroller" data-ref="scroller" tabindex="0" role="region" aria-label="Messages">
        <button type="button" class="older" data-ref="older" hidden>Load older messages</button>
        <ol class="messages" data-ref="messages"></ol>
        <p class="placeholder" data-ref="placeholder">Type a message below to start a conversation.</p>
      </div>
      <div class="notice" data-ref="notice" role="alert" hidden><p data-ref="noticeText"></p><button type="button" class="icon" data-ref="noticeClose" aria-label="Dismiss">${ICONS.close}</button></div>
      <form class="composer" part="composer" data-ref="composer">
        <label class="sr-only" for="input">Message</label>
        <textarea id="input" data-ref="input" rows="1" placeholder="Type a message…" enterkeyhint="send" aria-describedby="hint"></textarea>
        <button type="button" class="danger" data-ref="stop" hidden>Stop</button>
        <button type="submit" class="accent" data-ref="send">Send</button>
      </form>
      <p class="hint" id="hint" data-ref="hint">Enter sends, Shift+Enter starts a new line, Esc stops a reply.</p>
    </section>
  </div>
  <div class="sr-only" data-ref="live" aria-live="polite" aria-relevant="additions"></div>
</div>`;

/** The elements of the template the widget's parts drive, by their `data-ref` name. */
export type WidgetRefs = {
  root: HTMLDivElement;
  newButton: HTMLButtonElement;
  convs: HTMLUListElement;
  emptyConvs: HTMLParagraphElement;
  moreConvs: HTMLButtonElement;
  back: HTMLButtonElement;
  title: HTMLHeadingElement;
  status: HTMLSpanElement;
  banner: HTMLDivElement;
  bannerText: HTMLSpanElement;
  bannerAction: HTMLButtonElement;
  scroller: HTMLDivElement;
  older: HTMLButtonElement;
  messages: HTMLOListElement;
  placeholder: HTMLParagraphElement;
  notice: HTMLDivElement;
  noticeText: HTMLParagraphElement;
  noticeClose: HTMLButtonElement;
  composer: HTMLFormElement;
  input: HTMLTextAreaElement;
  stop: HTMLButtonElement;
  send: HTMLButtonElement;
  hint: HTMLParagraphElement;
  live: HTMLDivElement;
};

let sharedSheet: CSSStyleSheet | undefined;

/** Gives `host` an open shadow root holding the widget's markup and styles; returns its named elements. */
export function attachTemplate(host: HTMLElement): WidgetRefs {
  const shadow = host.attachShadow({ mode: 'open' });
  // A constructed sheet, shared by every instance: also allowed under a strict style-src CSP.
  if ('adoptedStyleSheets' in shadow && typeof CSSStyleSheet !== 'undefined' && 'replaceSync' in CSSStyleSheet.prototype) {
    sharedSheet ??= (() => {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      return sheet;
    })();
    shadow.adoptedStyleSheets = [sharedSheet];
    shadow.innerHTML = TEMPLATE;
  } else {
    shadow.innerHTML = `<style>${CSS}</style>${TEMPLATE}`;
  }
  const refs: Record<string, Element> = { root: shadow.querySelector('.root')! };
  for (const el of shadow.querySelectorAll('[data-ref]')) refs[(el as HTMLElement).dataset.ref!] = el;
  return refs as WidgetRefs;
}
