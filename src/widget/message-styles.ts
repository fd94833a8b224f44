/**
 * The messages' stylesheet: bubbles, the assistant's Markdown, tool-call chips, the "thinking" row, timestamps and
 * copy buttons. Appended to styles.ts's sheet and themed by the same custom properties (`--chat-accent`,
 * `--chat-surface`, `--chat-border`, `--chat-muted`, `--chat-danger`, `--chat-radius`, …); code blocks use
 * `--chat-mono-font` (default: the system's monospace stack).
 */
export const MESSAGE_CSS = /* css */ `
.messages { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 10px; }
.msg { display: flex; flex-direction: column; align-items: flex-start; }
.msg[data-role='user'] { align-items: flex-end; }
.bubble {
  max-width: min(80%, 62ch);
  padding: 8px 12px;
  border-radius: var(--_radius);
  overflow-wrap: anywhere;
  background: var(--_surface); border: 1px solid var(--_border);
  border-bottom-left-radius: 4px;
}
.msg[data-role='user'] .bubble {
  background: var(--_accent); color: var(--_accent-fg); border-color: var(--_accent);
  border-bottom-left-radius: var(--_radius); border-bottom-right-radius: 4px;
}
.msg[data-status='pending'] .bubble { opacity: 0.7; border-style: dashed; }
.text { white-space: pre-wrap; }
.text:empty { display: none; }

/* The assistant's Markdown. */
.md { white-space: normal; }
.md > :first-child { margin-top: 0; }
.md > :last-child { margin-bottom: 0; }
.md p, .md ul, .md ol, .md blockquote, .md table, .md .code { margin: 0.5em 0; }
.md h1, .md h2, .md h3, .md h4, .md h5, .md h6 { margin: 0.8em 0 0.4em; line-height: 1.25; font-weight: 650; }
.md h1 { font-size: 1.3em; }
.md h2 { font-size: 1.18em; }
.md h3 { font-size: 1.06em; }
.md h4, .md h5, .md h6 { font-size: 1em; }
.md ul, .md ol { padding-left: 1.4em; }
.md li + li { margin-top: 0.2em; }
.md li > p { margin: 0.2em 0; }
.md a { color: var(--_accent); text-decoration: underline; text-underline-offset: 2px; }
.md blockquote { margin-left: 0; padding-left: 10px; border-left: 3px solid var(--_border); color: var(--_muted); }
.md hr { border: 0; border-top: 1px solid var(--_border); margin: 0.8em 0; }
.md table { border-collapse: collapse; display: block; overflow-x: auto; max-width: 100%; }
.md th, .md td { border: 1px solid var(--_border); padding: 4px 8px; text-align: left; }
.md code {
  font-family: var(--chat-mono-font, ui-monospace, SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace);
  font-size: 0.88em;
  background: color-mix(in srgb, var(--_fg) 8%, transparent);
  padding: 0.1em 0.3em; border-radius: 4px;
}
.md .code { border: 1px solid var(--_border); border-radius: calc(var(--_radius) * 0.66); overflow: hidden; background: var(--_bg); }
.md .code-head {
  display: flex; align-items: center; justify-content: space-between; gap: 8px;
  padding: 2px 4px 2px 10px; font-size: 0.78em; color: var(--_muted);
  border-bottom: 1px solid var(--_border);
}
.md pre { margin: 0; padding: 8px 10px; overflow-x: auto; white-space: pre; }
.md pre code { background: none; padding: 0; font-size: 0.85em; }
.copy-code, .copy-reply {
  min-height: 26px; padding: 0 8px; font-size: 0.95em;
  border-color: transparent; background: transparent; color: var(--_muted);
}
.copy-code:hover:not(:disabled), .copy-reply:hover:not(:disabled) { color: var(--_fg); }

/* While a reply streams: a caret after its last words, or "Thinking…" before the first. */
.msg[data-status='streaming'] .md > p:last-child::after,
.msg[data-status='streaming'] .md > :is(ul, ol):last-child > li:last-child::after {
  content: ''; display: inline-block; width: 0.5em; height: 1em; margin-left: 2px;
  vertical-align: text-bottom; background: currentColor; opacity: 0.6;
  animation: blink 1s steps(2, start) infinite;
}
.thinking { margin: 0; color: var(--_muted); font-style: italic; }
.thinking::after {
  content: '…'; display: inline-block; overflow: hidden; vertical-align: bottom; width: 0;
  animation: dots 1.2s steps(4, end) infinite;
}
@keyframes blink { to { visibility: hidden; } }
@keyframes dots { to { width: 1.2em; } }

/* Tool calls of a reply, as chips above its text. */
.tools { list-style: none; margin: 0 0 6px; padding: 0; display: flex; flex-wrap: wrap; gap: 6px; }
.tool {
  display: inline-flex; align-items: center; gap: 6px;
  padding: 2px 10px 2px 8px; font-size: 0.82em;
  border: 1px solid var(--_border); border-radius: 999px; background: var(--_bg);
}
.tool-icon { width: 0.9em; height: 0.9em; flex: none; display: inline-grid; place-items: center; font-size: 0.9em; line-height: 1; }
.tool[data-status='running'] .tool-icon {
  border: 2px solid color-mix(in srgb, var(--_accent) 30%, transparent); border-top-color: var(--_accent);
  border-radius: 50%; animation: spin 0.8s linear infinite;
}
.tool[data-status='complete'] .tool-icon::before { content: '✓'; color: #1f9d55; font-weight: 700; }
.tool[data-status='failed'] { color: var(--_danger); border-color: currentColor; }
.tool[data-status='failed'] .tool-icon::before { content: '✕'; font-weight: 700; }
@keyframes spin { to { transform: rotate(360deg); } }

.msg-meta { display: flex; align-items: center; gap: 8px; font-size: 0.75em; color: var(--_muted); margin: 2px 4px 0; }
.msg[data-status='failed'] .note { color: var(--_danger); }
.msg[data-role='user'] .msg-meta { flex-direction: row-reverse; }

@media (prefers-reduced-motion: reduce) {
  .msg[data-status='streaming'] .md > p:last-child::after,
  .msg[data-status='streaming'] .md > :is(ul, ol):last-child > li:last-child::after,
  .tool[data-status='running'] .tool-icon { animation: none; }
  .thinking::after { animation: none; width: auto; }
}

@container (max-width: 640px) {
  .bubble { max-width: 88%; }
  .copy-code, .copy-reply { min-height: 32px; }
}
`;
