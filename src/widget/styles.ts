/**
 * The widget's stylesheet (inside its shadow root, so the host page's CSS cannot break it).
 *
 * Theming: set these custom properties on `chat-widget` (or any ancestor); each has a light and a dark default
 * (the dark ones follow `prefers-color-scheme`).
 *
 *   --chat-accent          buttons, own messages, focus ring      #2563eb / #2f6fe4
 *   --chat-accent-fg       text on the accent colour              #ffffff
 *   --chat-bg              background                             #ffffff / #14161a
 *   --chat-fg              text                                   #1f2328 / #e7e9ec
 *   --chat-muted           secondary text                         #5b6470 / #9aa3ad
 *   --chat-surface         sidebar, assistant messages            #f4f6f8 / #1d2026
 *   --chat-border          lines and outlines                     #dde1e6 / #30343b
 *   --chat-danger          errors, delete, stop                   #c62828 / #ff6b6b
 *   --chat-warning         the reconnecting banner                #8a5a00 on #fff4d6 / #ffd479 on #3a2f12
 *   --chat-warning-bg
 *   --chat-radius          corner radius                          12px
 *   --chat-font            font family                            system-ui stack
 *   --chat-font-size       base font size                         15px
 *   --chat-mono-font       code in replies                        ui-monospace stack
 *   --chat-height          the widget's height                    560px
 *   --chat-sidebar-width   the conversation list's width          260px
 *
 * Parts for deeper changes: `::part(root)`, `::part(sidebar)`, `::part(main)`, `::part(composer)`.
 * The messages' own rules (bubbles, Markdown, tool chips) are in message-styles.ts, on the same properties.
 *
 * @example
 * chat-widget { --chat-accent: #0a7d5a; --chat-radius: 4px; --chat-height: 100dvh; }
 */
export const WIDGET_CSS = /* css */ `
:host {
  --_accent: var(--chat-accent, #2563eb);
  --_accent-fg: var(--chat-accent-fg, #ffffff);
  --_bg: var(--chat-bg, #ffffff);
  --_fg: var(--chat-fg, #1f2328);
  --_muted: var(--chat-muted, #5b6470);
  --_surface: var(--chat-surface, #f4f6f8);
  --_border: var(--chat-border, #dde1e6);
  --_danger: var(--chat-danger, #c62828);
  --_warning: var(--chat-warning, #8a5a00);
  --_warning-bg: var(--chat-warning-bg, #fff4d6);
  --_radius: var(--chat-radius, 12px);
  --_font: var(--chat-font, system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif);
  --_font-size: var(--chat-font-size, 15px);
  display: block;
  height: var(--chat-height, 560px);
  min-height: 320px;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :host {
    --_accent: var(--chat-accent, #2f6fe4);
    --_bg: var(--chat-bg, #14161a);
    --_fg: var(--chat-fg, #e7e9ec);
    --_muted: var(--chat-muted, #9aa3ad);
    --_surface: var(--chat-surface, #1d2026);
    --_border: var(--chat-border, #30343b);
    --_danger: var(--chat-danger, #ff6b6b);
    --_warning: var(--chat-warning, #ffd479);
    --_warning-bg: var(--chat-warning-bg, #3a2f12);
  }
}
:host([hidden]) { display: none; }
* { box-sizing: border-box; }

.root {
  /* Positioned: the visually hidden (absolute) labels inside must not stretch the host page. */
  position: relative;
  container-type: inline-size;
  height: 100%;
  font-family: var(--_font);
  font-size: var(--_font-size);
  line-height: 1.45;
  color: var(--_fg);
}
.layout {
  display: grid;
  grid-template-columns: var(--chat-sidebar-width, 260px) minmax(0, 1fr);
  height: 100%;
  background: var(--_bg);
  border: 1px solid var(--_border);
  border-radius: var(--_radius);
  overflow: hidden;
}

button, input, textarea { font: inherit; color: inherit; }
button {
  cursor: pointer;
  border: 1px solid var(--_border);
  background: var(--_bg);
  border-radius: calc(var(--_radius) * 0.66);
  padding: 6px 12px;
  min-height: 36px;
}
button:hover:not(:disabled) { border-color: var(--_accent); }
button:disabled, button[aria-disabled='true'] { cursor: default; opacity: 0.55; }
:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
.accent { background: var(--_accent); color: var(--_accent-fg); border-color: var(--_accent); }
.accent:hover:not(:disabled) { filter: brightness(1.08); }
.danger { color: var(--_danger); border-color: currentColor; }
.icon {
  display: inline-grid; place-items: center;
  width: 32px; min-height: 32px; padding: 0;
  border-color: transparent; background: transparent; color: var(--_muted);
}
.icon:hover:not(:disabled), .icon:focus-visible { color: var(--_fg); background: var(--_bg); }
.icon svg { width: 16px; height: 16px; }
.sr-only {
  position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
[hidden] { display: none !important; }

/* ---- conversation list ---- */
.side {
  display: flex; flex-direction: column; min-height: 0;
  background: var(--_surface);
  border-right: 1px solid var(--_border);
}
.side-head {
  display: flex; align-items: center; justify-content: space-between; gap: 8px;
  padding: 12px 12px 8px;
}
.side-head h2 { font-size: 0.8em; text-transform: uppercase; letter-spacing: 0.06em; color: var(--_muted); margin: 0; }
.convs { list-style: none; margin: 0; padding: 4px 6px 8px; overflow-y: auto; flex: 1; min-height: 0; }
.conv { display: flex; align-items: center; gap: 2px; border-radius: calc(var(--_radius) * 0.66); }
.conv:hover { background: color-mix(in srgb, var(--_fg) 5%, transparent); }
.conv[aria-current='true'] { background: color-mix(in srgb, var(--_accent) 14%, transparent); }
.conv-open {
  flex: 1; min-width: 0; text-align: left;
  border: 0; background: transparent; padding: 8px 8px;
  display: flex; align-items: center; gap: 8px;
}
.conv-title { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.conv[aria-current='true'] .conv-title { font-weight: 600; }
.unread { width: 8px; height: 8px; border-radius: 50%; background: var(--_accent); flex: none; }
.conv-actions { display: flex; flex: none; opacity: 0.85; }
.conv-edit { display: flex; gap: 4px; padding: 4px; flex: 1; min-width: 0; }
.conv-edit input {
  flex: 1; min-width: 0; padding: 4px 8px;
  border: 1px solid var(--_accent); border-radius: 6px; background: var(--_bg);
}
.conv-confirm { display: flex; align-items: center; gap: 4px; padding: 4px 6px; flex: 1; min-width: 0; font-size: 0.9em; }
.conv-confirm span { flex: 1; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.conv-confirm button, .conv-edit button { min-height: 30px; padding: 2px 8px; }
.side-foot { padding: 4px 12px 12px; color: var(--_muted); font-size: 0.85em; }

/* ---- the open conversation ---- */
.main { display: flex; flex-direction: column; min-width: 0; min-height: 0; }
.main-head {
  display: flex; align-items: center; gap: 8px;
  padding: 10px 14px; border-bottom: 1px solid var(--_border);
}
.main-head h2 { flex: 1; min-width: 0; margin: 0; font-size: 1em; font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.back { display: none; }
.status { display: inline-flex; align-items: center; gap: 6px; font-size: 0.8em; color: var(--_muted); white-space: nowrap; }
.status::before { content: ''; width: 8px; height: 8px; border-radius: 50%; background: var(--_muted); }
.status[data-status='connected']::before { background: #1f9d55; }
.status[data-status='reconnecting']::before, .status[data-status='connecting']::before { background: #e0a100; }
.status[data-status='disconnected']::before { background: var(--_danger); }

.banner {
  display: flex; align-items: center; gap: 8px; justify-content: space-between;
  padding: 6px 14px; font-size: 0.9em;
  background: var(--_warning-bg); color: var(--_warning);
  border-bottom: 1px solid var(--_border);
}
.banner[data-kind='ok'] { background: color-mix(in srgb, #1f9d55 14%, var(--_bg)); color: inherit; }
.banner button { min-height: 28px; padding: 2px 10px; }

.scroller { position: relative; flex: 1; min-height: 0; overflow-y: auto; padding: 12px 14px; overscroll-behavior: contain; }
.scroller:focus-visible { outline-offset: -2px; }
.older { display: block; margin: 0 auto 12px; font-size: 0.85em; color: var(--_muted); }
.placeholder { margin: auto; padding: 32px 8px; text-align: center; color: var(--_muted); }

.notice {
  display: flex; align-items: flex-start; gap: 8px;
  margin: 0 14px 8px; padding: 8px 10px; font-size: 0.9em;
  color: var(--_danger); border: 1px solid currentColor; border-radius: calc(var(--_radius) * 0.66);
  background: color-mix(in srgb, var(--_danger) 8%, var(--_bg));
}
.notice p { margin: 0; flex: 1; }
.notice .icon { color: inherit; width: 24px; min-height: 24px; }

.composer {
  display: flex; align-items: flex-end; gap: 8px;
  padding: 10px 14px 12px; border-top: 1px solid var(--_border);
}
.composer textarea {
  flex: 1; min-width: 0; resize: none;
  max-height: 160px; min-height: 40px;
  padding: 8px 10px;
  border: 1px solid var(--_border); border-radius: calc(var(--_radius) * 0.66);
  background: var(--_bg);
}
.composer textarea:focus-visible { outline-offset: 0; border-color: var(--_accent); }
.composer button { min-height: 40px; }
.hint { font-size: 0.75em; color: var(--_muted); padding: 0 14px 8px; margin-top: -6px; }

/* Narrow (a phone, or a narrow embed): one pane at a time, the list or the conversation. */
@container (max-width: 640px) {
  .layout { grid-template-columns: minmax(0, 1fr); }
  .root[data-pane='chat'] .side, .root[data-pane='list'] .main { display: none; }
  .side { border-right: 0; }
  .back { display: inline-grid; }
  .hint { display: none; }
  button { min-height: 40px; }
  .icon { width: 40px; min-height: 40px; }
  .conv-open { padding: 12px 8px; }
}
`;
