// The page: a sign-in stand-in (a name in the address), then the chat on @chat-gateway/react. Everything shown of
// the conversations comes from the hooks, which read the SDK's own view: two tabs of the same user show the same.
import { ChatError, ChatProvider, useConnectionStatus, useConversation, useConversations } from '@chat-gateway/react';
import { useEffect, useState, type FormEvent } from 'react';

/** The user the page is for. Your app knows it from its own sign-in; here it is `?user=` (see vite.config.ts). */
const user = new URLSearchParams(location.search).get('user');

async function getToken(): Promise<string> {
  const res = await fetch(`/chat/token?user=${encodeURIComponent(user ?? '')}`);
  if (!res.ok) throw new Error(`the token endpoint answered ${res.status}`);
  return ((await res.json()) as { token: string }).token;
}

export function App() {
  const [gatewayUrl, setGatewayUrl] = useState<string>();
  useEffect(() => {
    void fetch('/chat/config')
      .then((res) => res.json() as Promise<{ gatewayUrl: string }>)
      .then((config) => setGatewayUrl(config.gatewayUrl));
  }, []);
  if (!user) return <SignIn />;
  if (!gatewayUrl) return <p className="note">Loading…</p>;
  // `key`: another user gets a new client, nothing of the previous one's is kept.
  return (
    <ChatProvider key={user} options={{ url: gatewayUrl, getToken }} fallback={<p className="note">Connecting…</p>}>
      <Chat />
    </ChatProvider>
  );
}

function SignIn() {
  return (
    <form className="signin" method="get">
      <label>
        Your name <input name="user" required pattern="[\w.\-]{1,40}" />
      </label>
      <button type="submit">Sign in</button>
    </form>
  );
}

function Chat() {
  const status = useConnectionStatus();
  const { conversations, loading } = useConversations();
  const [openId, setOpenId] = useState<string | null>(null);
  return (
    <div className="app">
      <header>
        <strong>React chat</strong>
        <span className="who">{user}</span>
        <span className="status" data-status={status}>
          {status}
        </span>
      </header>
      <nav aria-label="Conversations">
        <button type="button" onClick={() => setOpenId(null)}>
          New chat
        </button>
        {loading ? <p className="note">Loading…</p> : null}
        <ul>
          {conversations.map((c) => (
            <li key={c.id}>
              <button type="button" className="conv" aria-current={c.id === openId} onClick={() => setOpenId(c.id)}>
                {c.title ?? 'Untitled'}
              </button>
            </li>
          ))}
        </ul>
      </nav>
      <Conversation id={openId} onStarted={setOpenId} />
    </div>
  );
}

function Conversation({ id, onStarted }: { id: string | null; onStarted: (id: string) => void }) {
  const { messages, hasOlder, loadOlder, loading, error, isStreaming, sending, send, stop } = useConversation(id);
  const [text, setText] = useState('');
  const [failure, setFailure] = useState<string>();

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const content = text.trim();
    if (!content) return;
    setText('');
    setFailure(undefined);
    try {
      const { conversation } = await send(content);
      if (id === null) onStarted(conversation.id);
    } catch (err) {
      // Refused (too long, rate limited) or unanswered: the text goes back in the box.
      setText(content);
      setFailure(err instanceof ChatError ? `${err.code}: ${err.message}` : String(err));
    }
  };

  return (
    <main>
      {error ? <p role="alert">{error.message}</p> : null}
      {hasOlder ? (
        <button type="button" onClick={() => void loadOlder()}>
          Older messages
        </button>
      ) : null}
      {loading ? <p className="note">Loading…</p> : null}
      <ol className="messages" aria-live="polite">
        {messages.map((m) => (
          <li key={m.id} className="msg" data-seq={m.seq} data-role={m.role} data-status={m.status}>
            <span className="text">{m.content}</span>
          </li>
        ))}
      </ol>
      {failure ? <p role="alert">{failure}</p> : null}
      <form className="composer" onSubmit={(e) => void submit(e)}>
        <input aria-label="Message" value={text} onChange={(e) => setText(e.target.value)} placeholder="Message" />
        {isStreaming ? (
          <button type="button" onClick={() => void stop()}>
            Stop
          </button>
        ) : (
          <button type="submit" disabled={sending}>
            Send
          </button>
        )}
      </form>
    </main>
  );
}
