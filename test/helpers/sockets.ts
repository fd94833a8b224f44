// Real socket.io-client tabs against a gateway's /chat namespace: connect with a token (auth or header),
// record every server → client event in order, wait for events (with a generous timeout, never a timed
// assertion), and send commands with an acknowledgement.
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type {
  Ack,
  ClientToServerEvents,
  CommandName,
  CommandPayloads,
  CommandResults,
  MessageDelta,
  MessageDto,
  ServerToClientEvents,
} from '../../src/shared/events.ts';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** One event as a tab received it. `disconnect` and `connect` are recorded too (payload: the reason). */
export interface Received {
  event: string;
  payload: any;
}

export interface ConnectOptions {
  /** `auth: { token }` (default) or `Authorization: Bearer` header; undefined token sends none. */
  tokenIn?: 'auth' | 'header';
  /** Default websocket only (fast, deterministic); pass ['polling'] or ['polling', 'websocket'] to vary. */
  transports?: ('polling' | 'websocket')[];
  extraHeaders?: Record<string, string>;
  /** Namespace path (default /chat). */
  namespace?: string;
  /** How long to wait for the handshake (default 10 s). */
  timeoutMs?: number;
}

/** Generous default wait for an event: a wait that is exceeded is a failure, but nothing is timed. */
export const WAIT_MS = 20_000;

const open = new Set<Tab>();

/** A browser tab, as the server sees it: one socket, every event it received, in order. */
export class Tab {
  readonly socket: ClientSocket;
  readonly events: Received[] = [];
  /** Raw ACK packets by id, counted at the Manager level (the Socket drops a second ack for one id silently). */
  readonly ackPackets = new Map<number, number>();
  private listeners = new Set<() => void>();
  readonly name: string;

  constructor(socket: ClientSocket, name: string) {
    this.socket = socket;
    this.name = name;
    socket.onAny((event: string, ...args: unknown[]) => this.record({ event, payload: args[0] }));
    socket.on('disconnect', (reason) => this.record({ event: 'disconnect', payload: reason }));
    socket.io.on('packet', (packet: { type: number; id?: number; nsp: string }) => {
      // socket.io-parser PacketType.ACK = 3, BINARY_ACK = 6
      if ((packet.type === 3 || packet.type === 6) && packet.id !== undefined) {
        this.ackPackets.set(packet.id, (this.ackPackets.get(packet.id) ?? 0) + 1);
      }
    });
    open.add(this);
  }

  private record(r: Received) {
    this.events.push(r);
    for (const l of [...this.listeners]) l();
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  /** Payloads of every `event` received so far that match. */
  all<T = any>(event: string, match: (payload: T) => boolean = () => true): T[] {
    return this.events.filter((e) => e.event === event && match(e.payload)).map((e) => e.payload as T);
  }

  /** Resolves once `count` events `event` that match have been received (counting those already received). */
  waitForCount<T = any>(event: string, count: number, match: (payload: T) => boolean = () => true, timeoutMs = WAIT_MS): Promise<T[]> {
    return this.until(
      () => {
        const found = this.all<T>(event, match);
        return found.length >= count ? found : undefined;
      },
      `${this.name}: ${count} × ${event}`,
      timeoutMs,
    );
  }

  /** The first matching `event`, received before or after the call. */
  async waitFor<T = any>(event: string, match: (payload: T) => boolean = () => true, timeoutMs = WAIT_MS): Promise<T> {
    const [first] = await this.waitForCount<T>(event, 1, match, timeoutMs);
    return first!;
  }

  /**
   * Resolves with the first defined value of `check`, re-evaluated whenever an event arrives. Tabs do not
   * reconnect, so once disconnected nothing more can arrive: the wait then fails at once, with the reason.
   */
  until<T>(check: () => T | undefined, what: string, timeoutMs = WAIT_MS): Promise<T> {
    const gone = () => {
      const reason = this.all<string>('disconnect').at(-1);
      return reason === undefined
        ? undefined
        : new Error(`${this.name} was disconnected (${reason}) while waiting for ${what} (received: ${this.summary()})`);
    };
    const now = check();
    if (now !== undefined) return Promise.resolve(now);
    const already = gone();
    if (already) return Promise.reject(already);
    return new Promise((resolve, reject) => {
      const listener = () => {
        const value = check();
        if (value !== undefined) {
          cleanup();
          resolve(value);
          return;
        }
        const err = gone();
        if (err) {
          cleanup();
          reject(err);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what} (received: ${this.summary()})`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      this.listeners.add(listener);
    });
  }

  /** The names of the events received so far (the last 2,000 characters), for failure messages. */
  summary(): string {
    return this.events
      .map((e) => (e.event === 'disconnect' ? `disconnect(${e.payload})` : e.event))
      .join(', ')
      .slice(-2000);
  }

  /** Sends a command and resolves with its acknowledgement (rejects if none comes within the timeout, or the socket is or gets disconnected). */
  request<K extends CommandName>(event: K, payload: CommandPayloads[K], timeoutMs = WAIT_MS): Promise<Ack<CommandResults[K]>> {
    return this.guard(event, () => (this.socket.timeout(timeoutMs) as any).emitWithAck(event, payload));
  }

  /** Sends anything under any name (for the fuzz): `args` go before the ack callback. */
  requestRaw(event: string, args: unknown[], timeoutMs = WAIT_MS): Promise<unknown> {
    return this.guard(event, () => (this.socket.timeout(timeoutMs) as any).emitWithAck(event, ...args));
  }

  /** A request on a disconnected socket would only be buffered until its timeout: fail at once, with the reason. */
  private guard<T>(event: string, send: () => Promise<T>): Promise<T> {
    const reason = () => this.all<string>('disconnect').at(-1) ?? 'never connected';
    if (!this.socket.connected) return Promise.reject(new Error(`${this.name}: ${event} sent on a disconnected socket (${reason()})`));
    return new Promise<T>((resolve, reject) => {
      const onDisconnect = (why: string) => reject(new Error(`${this.name}: disconnected (${why}) while waiting for the ack of ${event}`));
      this.socket.once('disconnect', onDisconnect);
      send().then(
        (v) => {
          this.socket.off('disconnect', onDisconnect);
          resolve(v);
        },
        (err) => {
          this.socket.off('disconnect', onDisconnect);
          reject(err);
        },
      );
    });
  }

  /** Like request, but fails the test unless the ack is ok; returns its data. */
  async ok<K extends CommandName>(event: K, payload: CommandPayloads[K], timeoutMs = WAIT_MS): Promise<CommandResults[K]> {
    const ack = await this.request(event, payload, timeoutMs);
    if (!ack.ok) throw new Error(`${this.name}: ${event} answered ${JSON.stringify(ack.error)}`);
    return ack.data;
  }

  /** Deltas of one reply received by this tab, in arrival order. */
  deltas(messageId: string): MessageDelta[] {
    return this.all<MessageDelta>('message:delta', (d) => d.messageId === messageId);
  }

  /** Waits for the `message:updated` that ends a reply (any status but streaming). */
  replyEnd(messageId: string, timeoutMs = WAIT_MS): Promise<MessageDto> {
    return this.waitFor<{ message: MessageDto }>(
      'message:updated',
      (p) => p.message.id === messageId && p.message.status !== 'streaming',
      timeoutMs,
    ).then((p) => p.message);
  }

  /** Waits for the assistant's `message:created` answering `userMessageId`. */
  replyStart(userMessageId: string, timeoutMs = WAIT_MS): Promise<MessageDto> {
    return this.waitFor<{ message: MessageDto }>(
      'message:created',
      (p) => p.message.role === 'assistant' && (p.message.metadata as { replyToId?: string } | null)?.replyToId === userMessageId,
      timeoutMs,
    ).then((p) => p.message);
  }

  /** Resolves with the reason once the socket is disconnected. */
  disconnected(timeoutMs = WAIT_MS): Promise<string> {
    return this.waitFor<string>('disconnect', () => true, timeoutMs);
  }

  close(): void {
    this.socket.disconnect();
    open.delete(this);
  }
}

function socketFor(url: string, token: string | undefined, opts: ConnectOptions): ClientSocket {
  const headers: Record<string, string> = { ...opts.extraHeaders };
  const tokenIn = opts.tokenIn ?? 'auth';
  if (token !== undefined && tokenIn === 'header') headers.authorization = `Bearer ${token}`;
  const options: Partial<ManagerOptions & SocketOptions> = {
    transports: opts.transports ?? ['websocket'],
    reconnection: false,
    forceNew: true,
    timeout: opts.timeoutMs ?? 10_000,
    ...(token !== undefined && tokenIn === 'auth' ? { auth: { token } } : {}),
    ...(Object.keys(headers).length ? { extraHeaders: headers } : {}),
  };
  return io(`${url}${opts.namespace ?? '/chat'}`, options) as ClientSocket;
}

let tabCounter = 0;

/** Opens a tab and resolves once connected; rejects with the connect_error if the handshake is refused. */
export function connectTab(url: string, token: string | undefined, opts: ConnectOptions & { name?: string } = {}): Promise<Tab> {
  const socket = socketFor(url, token, opts);
  const tab = new Tab(socket, opts.name ?? `tab${++tabCounter}`);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      socket.off('connect_error');
      resolve(tab);
    });
    socket.once('connect_error', (err) => {
      tab.close();
      reject(err);
    });
  });
}

export type ConnectError = Error & { data?: { code?: string }; description?: unknown; type?: string };

/** Attempts a handshake that should be refused; resolves with the connect_error, rejects if it connects. */
export function connectError(url: string, token: string | undefined, opts: ConnectOptions = {}): Promise<ConnectError> {
  const socket = socketFor(url, token, opts);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      socket.disconnect();
      reject(new Error('the handshake was accepted'));
    });
    socket.once('connect_error', (err) => {
      socket.disconnect();
      resolve(err as ConnectError);
    });
  });
}

/** Closes every tab still open (afterEach/afterAll). */
export function closeAllTabs(): void {
  for (const tab of [...open]) tab.close();
}

/** Deltas sorted by index, checked to be 0..n-1 with no gap or repeat; returns the joined text. */
export function joinDeltas(deltas: MessageDelta[]): string {
  const sorted = [...deltas].sort((a, b) => a.index - b.index);
  sorted.forEach((d, i) => {
    if (d.index !== i) throw new Error(`delta indexes are not 0..n-1: ${sorted.map((x) => x.index).join(',')}`);
  });
  return sorted.map((d) => d.text).join('');
}

export const SOCKET_ERROR_CODES = ['VALIDATION', 'NOT_FOUND', 'RATE_LIMITED', 'UNAVAILABLE', 'UNAUTHORIZED', 'INTERNAL'] as const;
