/**
 * The observer tabs of `--verify converged`: per user, a few clients of the project's SDK that follow the user's
 * conversation as an app's tab does — `open()`, the conversation list, live events, gap fills, the catch-up after a
 * reconnect, re-reads of replies gone quiet, `sync:required`. At the end of the run their views are compared with
 * what the gateway stores (converge.ts).
 *
 * They send nothing. The load tabs keep their raw hot path (fleet.ts), so the generator's cost per message sent is
 * the same in both modes and an unanswered send still shows as one; the observers add only their own receipts.
 */
import { ChatError, createChatClient, type ChatClient } from '../../src/sdk/index.ts';
import { pool, SetupError, type User } from './fleet.ts';
import type { LoadOptions } from './options.ts';

export interface ObserverTab {
  /** Index of the user. */
  user: number;
  /** 0-based among the user's observers. */
  index: number;
  url: string;
  chat: ChatClient;
}

/** Error messages kept for the report: enough to see what kind of trouble the SDK met, not every repeat of it. */
const KEPT_ERRORS = 10;

export class Observers {
  readonly tabs: ObserverTab[] = [];
  disconnects = 0;
  reconnects = 0;
  /** Failures the SDK reported on its own ('error' events: a gap fill or catch-up that failed while a node was away). */
  errors = 0;
  readonly firstErrors: string[] = [];
  private closing = false;
  private readonly o: LoadOptions;
  private readonly users: User[];

  constructor(o: LoadOptions, users: User[]) {
    this.o = o;
    this.users = users;
  }

  get count(): number {
    return this.o.users * this.o.observers;
  }

  /** The observers of one user. */
  of(user: number): ObserverTab[] {
    return this.tabs.slice(user * this.o.observers, (user + 1) * this.o.observers);
  }

  /**
   * Connects every observer and loads what its app would show first: the user's conversation (followed from then
   * on) and the conversation list. The users' conversations must exist.
   */
  async open(onProgress: () => void): Promise<void> {
    const slots = this.users.flatMap((user) => Array.from({ length: this.o.observers }, (_, index) => ({ user, index })));
    await pool(slots, this.o.connectConcurrency, async ({ user, index }) => {
      await this.openTab(user, index);
      onProgress();
    });
  }

  private async openTab(user: User, index: number): Promise<void> {
    // Spread like the load tabs: with two nodes, a user's two observers sit on different nodes.
    const url = this.o.urls[(user.index + index) % this.o.urls.length]!;
    const chat = createChatClient({ url, getToken: user.token, transports: this.o.transports, ackTimeoutMs: 30_000 });
    this.tabs[user.index * this.o.observers + index] = { user: user.index, index, url, chat };
    let connectedOnce = false;
    chat.on('error', (err) => {
      if (this.closing || !connectedOnce) return;
      this.errors++;
      if (this.firstErrors.length < KEPT_ERRORS) {
        const code = err instanceof ChatError ? `${err.code} ` : '';
        this.firstErrors.push(`${user.userId} observer ${index}: ${code}${err.message}`);
      }
    });
    chat.socket.on('disconnect', () => {
      if (!this.closing) this.disconnects++;
    });
    chat.socket.on('connect', () => {
      if (connectedOnce) this.reconnects++;
      connectedOnce = true;
    });
    const label = `${user.userId} observer ${index}`;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => done(new SetupError(`${label}: not connected to ${url} after ${this.o.connectTimeoutS} s`)),
        this.o.connectTimeoutS * 1000,
      );
      const offStatus = chat.on('status', (s) => {
        if (s === 'connected') done();
      });
      const offError = chat.on('error', (err) => {
        const code = err instanceof ChatError ? err.code : 'ERROR';
        const hint = code === 'TOO_MANY_CONNECTIONS' ? " (the gateway's MAX_SOCKETS_PER_USER must allow --tabs plus --observers)" : '';
        done(new SetupError(`${label}: handshake with ${url} refused: ${code} ${err.message}${hint}`));
      });
      const done = (err?: Error) => {
        clearTimeout(timer);
        offStatus();
        offError();
        if (err) reject(err);
        else resolve();
      };
      if (chat.connected) done();
    });
    try {
      await chat.open(user.conversationId);
      await chat.listConversations({ limit: 100 });
    } catch (err) {
      throw new SetupError(`${label}: could not load the conversation: ${(err as Error).message}`);
    }
  }

  close(): void {
    this.closing = true;
    for (const tab of this.tabs) tab?.chat.close();
  }
}
