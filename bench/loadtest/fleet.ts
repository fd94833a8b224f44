/**
 * The simulated users and their tabs. Each tab is a real client of the project's SDK (createChatClient: handshake
 * with a freshly minted token, reconnects, token renewal, commands with acks), spread so that a user's tabs sit on
 * different nodes. The hot path goes under the SDK, on the same typed socket.io-client socket (`chat.socket`):
 *
 * - receipts are counted from the raw `message:created` / `message:delta` / `message:updated` events, because the
 *   SDK's local view deduplicates by seq and repairs gaps with history:get — exactly what a delivery check must
 *   not do; the SDK is told to skip its own bookkeeping (`filterIncoming`), which would otherwise follow every
 *   conversation and grow a view per tab for nothing;
 * - sends are `socket.emit('message:send', …, ack)` with this run's clientMessageId, not `chat.send()`, which
 *   retries on its own (hiding an unanswered send), follows the conversation (gap fills on every tab that sent)
 *   and allocates a promise chain per message — at thousands of messages a second, the generator's own cost
 *   counts.
 */
import { signToken } from '../../src/auth/jwt.ts';
import { ChatError, createChatClient, type ChatClient } from '../../src/sdk/index.ts';
import { Latency } from './histograms.ts';
import type { LoadOptions } from './options.ts';
import type { Tracker } from './tracker.ts';

export class SetupError extends Error {
  override name = 'SetupError';
}

export interface Tab {
  user: number;
  tab: number;
  url: string;
  chat: ChatClient;
  connected: boolean;
  disconnects: number;
}

export interface User {
  index: number;
  userId: string;
  conversationId: string;
  tabs: Tab[];
  /** Mints a fresh token for this user. */
  token: () => string;
  /** The next tab to send from (round robin). */
  nextTab: number;
}

/** Runs `fn` over `items`, at most `limit` at a time; the first failure rejects (the others still settle). */
export async function pool<T>(items: T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined) {
      const i = next++;
      if (i >= items.length) return;
      try {
        await fn(items[i]!, i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

export class Fleet {
  readonly users: User[] = [];
  readonly connect = new Latency();
  reconnects = 0;
  readonly disconnectReasons = new Map<string, number>();
  /** `"<user>:<tab>"` of tabs that lost their connection during the run. */
  readonly disconnectedTabs = new Set<string>();
  connectedTabs = 0;
  private closing = false;
  /** Handshakes still awaited: closing the fleet fails them at once instead of at their timeout. */
  private readonly waiting = new Set<(err: Error) => void>();
  private readonly o: LoadOptions;
  private readonly tracker: Tracker;
  private readonly filler: string;

  constructor(o: LoadOptions, tracker: Tracker) {
    this.o = o;
    this.tracker = tracker;
    const words = 'the quick brown fox jumps over the lazy dog while load is offered at a steady rate ';
    this.filler = words.repeat(Math.ceil((o.size + 32) / words.length));
    for (let u = 0; u < o.users; u++) {
      const userId = `${o.userPrefix}-${u}`;
      this.users.push({
        index: u,
        userId,
        conversationId: '',
        tabs: [],
        token: () => signToken(o.secret, userId, { expiresInS: o.tokenTtlS, issuer: o.issuer, audience: o.audience }),
        nextTab: 0,
      });
    }
  }

  get tabCount(): number {
    return this.o.users * this.o.tabs;
  }

  /** Opens every tab (`connectConcurrency` handshakes at a time); rejects with a SetupError if one cannot connect. */
  async open(onProgress: () => void): Promise<void> {
    const slots = this.users.flatMap((user) => Array.from({ length: this.o.tabs }, (_, t) => ({ user, t })));
    await pool(slots, this.o.connectConcurrency, async ({ user, t }) => {
      await this.openTab(user, t);
      onProgress();
    });
  }

  private openTab(user: User, t: number): Promise<void> {
    const u = user.index;
    const n = this.o.urls.length;
    const url = this.o.urls[this.o.placement === 'affine' ? u % n : (u + t) % n]!;
    const tracker = this.tracker;
    const started = performance.now();
    const chat = createChatClient({
      url,
      getToken: user.token,
      transports: this.o.transports,
      ackTimeoutMs: 30_000,
      // Only the token's expiry concerns the SDK here; message events are counted raw below.
      filterIncoming: (...[event]) => event === 'auth:expired',
    });
    const tab: Tab = { user: u, tab: t, url, chat, connected: false, disconnects: 0 };
    user.tabs[t] = tab;
    const s = chat.socket;
    s.on('message:created', (p) => tracker.onCreated(u, t, p.message, performance.now()));
    s.on('message:delta', (p) => tracker.onDelta(u, t, p, performance.now()));
    s.on('message:updated', (p) => tracker.onUpdated(u, t, p.message, performance.now()));
    s.on('disconnect', (reason) => {
      tab.connected = false;
      this.connectedTabs--;
      if (this.closing) return;
      tab.disconnects++;
      this.disconnectedTabs.add(`${u}:${t}`);
      this.disconnectReasons.set(reason, (this.disconnectReasons.get(reason) ?? 0) + 1);
      tracker.onDisconnect(u, t, performance.now());
    });
    return new Promise<void>((resolve, reject) => {
      let first = true;
      const fail = (err: Error) => {
        clearTimeout(timer);
        this.waiting.delete(fail);
        reject(err);
      };
      this.waiting.add(fail);
      const timer = setTimeout(() => {
        fail(new SetupError(`${user.userId} tab ${t}: not connected to ${url} after ${this.o.connectTimeoutS} s`));
      }, this.o.connectTimeoutS * 1000);
      const offError = chat.on('error', (err) => {
        if (!first) return;
        const code = err instanceof ChatError ? err.code : 'ERROR';
        const hint =
          code === 'UNAUTHORIZED' || code === 'TOKEN_EXPIRED'
            ? " (is --secret the gateway's JWT_SECRET, and --issuer/--audience its JWT_ISSUER/JWT_AUDIENCE?)"
            : code === 'TOO_MANY_CONNECTIONS'
              ? " (raise the gateway's MAX_SOCKETS_PER_USER or lower --tabs)"
              : '';
        fail(new SetupError(`${user.userId} tab ${t}: handshake with ${url} refused: ${code} ${err.message}${hint}`));
      });
      s.on('connect', () => {
        tab.connected = true;
        this.connectedTabs++;
        if (!first) {
          this.reconnects++;
          return;
        }
        first = false;
        clearTimeout(timer);
        this.waiting.delete(fail);
        offError();
        this.connect.record(performance.now() - started);
        resolve();
      });
    });
  }

  /** Creates each user's conversation (from its first tab); the run's messages all go there. */
  async createConversations(concurrency: number, onProgress: () => void): Promise<void> {
    await pool(this.users, concurrency, async (user) => {
      try {
        const { conversation } = await user.tabs[0]!.chat.createConversation({ title: `load test ${this.o.runId}` });
        user.conversationId = conversation.id;
      } catch (err) {
        throw new SetupError(`${user.userId}: conversation:create failed: ${(err as Error).message}`);
      }
      onProgress();
    });
  }

  /** Emits message k now, from the next connected tab of its user; `dueMs` is when the schedule wanted it. */
  send(k: number, dueMs: number): void {
    const user = this.users[k % this.o.users]!;
    const T = this.o.tabs;
    let tab: Tab | undefined;
    for (let i = 0; i < T; i++) {
      const candidate = user.tabs[(user.nextTab + i) % T]!;
      if (candidate.connected) {
        tab = candidate;
        user.nextTab = (candidate.tab + 1) % T;
        break;
      }
    }
    const now = performance.now();
    if (!tab) {
      this.tracker.notSendable(k, now);
      return;
    }
    const clientMessageId = this.tracker.clientMessageId(k);
    // Exactly `size` characters, never ending in white space; the number makes each one distinct to the eye.
    let content = `#${k} ${this.filler}`.slice(0, this.o.size);
    if (content.endsWith(' ')) content = `${content.slice(0, -1)}.`;
    const tracker = this.tracker;
    tracker.sending(k, tab.tab, now, dueMs);
    tab.chat.socket.emit('message:send', { conversationId: user.conversationId, content, clientMessageId }, (ack) =>
      tracker.onAck(k, ack, performance.now()),
    );
  }

  close(): void {
    this.closing = true;
    for (const fail of [...this.waiting]) fail(new SetupError('closed before connecting'));
    for (const user of this.users) for (const tab of user.tabs) tab?.chat.close();
  }
}
