/**
 * The widget bundle's entry (built to public/dist/chat-widget.js, served at /widget/chat-widget.js): defines
 * `<chat-widget>` once, and exports the class and the SDK for pages that want more than the element.
 *
 * @example
 * <script type="module" src="/widget/chat-widget.js"></script>
 * <chat-widget></chat-widget>
 * <script type="module">document.querySelector('chat-widget').token = jwt;</script>
 */
import { ChatWidget } from './chat-widget.ts';

export { ChatWidget } from './chat-widget.ts';
export type { ChatErrorDetail, ChatStatusDetail, TokenGetter } from './chat-widget.ts';
export { ChatError, createChatClient } from '../sdk/index.ts';

// A page that includes the script twice (or two copies of it) keeps the first definition.
if (!customElements.get('chat-widget')) customElements.define('chat-widget', ChatWidget);
