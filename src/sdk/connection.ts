/**
 * The socket's life: handshake tokens, status, reconnect policy, token renewal, and commands with their
 * acknowledgements. Knows nothing of conversations (see sync.ts).
 */
import { io } from 'socket.io-client';
import {
  PROTOCOL_VERSION,
  type Ack,
  type CommandName,
  type CommandPayloads,
  type CommandResults,
  type ConnectErrorData,
  type HandshakeAuth,
} from '../shared/events.ts';
import type { Emitter } from './emitter.ts';
import { ChatError, fromSocketError } from './errors.ts';
import { AFFINITY_PARAM, affinityKey, jwtExp, jwtSub } from './token.ts';
import type { ChatClientEvents, ChatClientOptions, ChatSocket, ConnectionStatus } from './types.ts';

const MAX_RECONNECT_DELAY_MS = 30_000;
/** A connection that lasted this long resets the backoff of the client's own reconnects. */
const STABLE_CONNECTION_MS = 10_000;
const REFRESH_RETRY_MS = 5000;

/** The longest a retry waits for the `retryAfterMs` of an `UNAVAILABLE`, whatever the gateway says. */
const MAX_RETRY_AFTER_MS = 5_000;
/** How long a token fetched before connecting (for the affinity key) may serve the handshake instead of a new one. */
const PREFETCH_FRESH_MS = 10_000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class Connection {
  readonly socket: ChatSocket;
  private readonly events: Emitter<ChatClientEvents>;
  private readonly onConnected: (reconnected: boolean) => void;
  private readonly getToken?: () => string | Promise<string>;
  private readonly ackTimeoutMs: number;
  private readonly attempts: number;
  private readonly refreshBeforeMs: number;
  private readonly affinity: boolean;

  private token?: string;
  private handshakeToken?: string;
  private tokenExp?: number;
  private tokenFetchFailed = false;
  private expiredByServer = false;
  private everConnected = false;
  private connectedAt = 0;
  private reconnectAttempts = 0;
  private currentStatus: ConnectionStatus = 'connecting';
  private refreshTimer?: ReturnType<typeof setTimeout>;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private closedFlag = false;
  /** A token fetched before the first connection (for its affinity key), handed to that connection's handshake. */
  private prefetched?: { token: Promise<string>; at: number };
  private prefetching = false;
  private rejectClosed!: (err: ChatError) => void;
  private readonly whenClosed = new Promise<never>((_, reject) => (this.rejectClosed = reject));

  constructor(options: ChatClientOptions, events: Emitter<ChatClientEvents>, onConnected: (reconnected: boolean) => void) {
    if (!options.token && !options.getToken) throw new TypeError('createChatClient needs `token` or `getToken`');
    this.events = events;
    this.onConnected = onConnected;
    this.token = options.token;
    this.getToken = options.getToken;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 10_000;
    this.attempts = Math.max(1, options.sendAttempts ?? 3);
    this.refreshBeforeMs = options.refreshBeforeMs ?? 30_000;
    this.affinity = options.userAffinity ?? true;
    this.whenClosed.catch(() => {});

    this.socket = io(`${options.url.replace(/\/+$/, '')}/chat`, {
      transports: options.transports ?? ['websocket'],
      // One connection per client, as one per browser tab: two clients never share a Manager.
      forceNew: true,
      ...options.socketOptions,
      autoConnect: false,
      // A callback, not an object: every (re)connect's handshake gets a fresh token.
      auth: (cb) => void this.handshakeAuth().then(cb),
    });
    if (this.token) this.keepAffinity(this.token);
    this.socket.on('connect', () => this.handleConnect());
    this.socket.on('disconnect', () => this.handleDisconnect());
    this.socket.on('connect_error', (err) => this.handleConnectError(err as Error & { data?: Partial<ConnectErrorData> }));
  }

  get status(): ConnectionStatus {
    return this.currentStatus;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  connect(): void {
    if (this.closedFlag) throw new ChatError('DISCONNECTED', 'the client is closed');
    if (this.socket.active || this.prefetching) return;
    this.setStatus(this.everConnected ? 'reconnecting' : 'connecting');
    if (this.affinity && this.getToken && !this.affinityKnown()) {
      // The key goes in the URL of the transport's first request, before the handshake asks for a token: fetch
      // that token now, and let the handshake use it (getToken is still called once per handshake).
      const token = Promise.resolve().then(() => this.getToken!());
      this.prefetched = { token, at: Date.now() };
      this.prefetching = true;
      void token
        .then((t) => this.keepAffinity(t))
        .catch(() => undefined)
        .finally(() => {
          this.prefetching = false;
          if (!this.closedFlag && !this.socket.active) this.socket.connect();
        });
      return;
    }
    this.socket.connect();
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    clearTimeout(this.refreshTimer);
    clearTimeout(this.reconnectTimer);
    this.rejectClosed(new ChatError('DISCONNECTED', 'the client was closed'));
    this.socket.disconnect();
    this.setStatus('disconnected');
  }

  /** One command, one acknowledgement: its data, or a ChatError (the server's, `TIMEOUT` or `DISCONNECTED`). */
  async command<K extends CommandName>(event: K, payload: CommandPayloads[K]): Promise<CommandResults[K]> {
    if (this.closedFlag) throw new ChatError('DISCONNECTED', `${event}: the client is closed`);
    const timed = this.socket.timeout(this.ackTimeoutMs);
    // socket.io-client's types cannot follow a generic event name through its mapped types.
    const emit = timed.emitWithAck as unknown as (
      this: typeof timed,
      event: K,
      payload: CommandPayloads[K],
    ) => Promise<Ack<CommandResults[K]>>;
    let ack: Ack<CommandResults[K]>;
    try {
      ack = await Promise.race([emit.call(timed, event, payload), this.whenClosed]);
    } catch (err) {
      throw fromSocketError(err, event, this.ackTimeoutMs);
    }
    if (!ack || typeof ack !== 'object') throw new ChatError('INTERNAL', `${event}: malformed acknowledgement`);
    if (!ack.ok) throw ChatError.fromWire(ack.error);
    return ack.data;
  }

  /**
   * A command retried while its outcome is unknown, or while the gateway says to come back (`UNAVAILABLE`: a node
   * shutting down, a database away, a write past its bound), after the `retryAfterMs` it gives. Only for idempotent
   * commands (reads, sends with a clientMessageId). Each attempt waits for the connection while it is on its way
   * back, so time spent offline uses up neither the acknowledgement's timeout nor the attempts: a message sent
   * offline goes out once, when the socket is back.
   */
  async retrying<K extends CommandName>(event: K, payload: CommandPayloads[K]): Promise<CommandResults[K]> {
    for (let attempt = 1; ; attempt++) {
      // Awaited only when there is something to wait for: connected, the command goes out in this very call.
      const offline = this.untilOnline();
      if (offline) await offline;
      try {
        return await this.command(event, payload);
      } catch (err) {
        const later = err instanceof ChatError && err.code === 'UNAVAILABLE';
        if (!(err instanceof ChatError) || !(err.outcomeUnknown || later) || attempt >= this.attempts || this.closedFlag) throw err;
        // A little jitter: tabs refused together (a node draining) do not all come back in the same millisecond.
        if (later) await sleep(Math.min(err.retryAfterMs ?? 1000, MAX_RETRY_AFTER_MS) * (1 + Math.random() / 4));
      }
    }
  }

  /**
   * Resolves once the socket is connected; undefined when there is nothing to wait for: connected, or not coming
   * back by itself (`disconnected`: the server refused or let it go, or the client was closed). Then the command
   * goes out (socket.io-client buffers it until a connect) and its acknowledgement's timeout decides, as before.
   */
  private untilOnline(): Promise<void> | undefined {
    const waiting = (s: ConnectionStatus) => s === 'connecting' || s === 'reconnecting';
    if (this.socket.connected || !waiting(this.currentStatus)) return undefined;
    return new Promise((resolve) => {
      const off = this.events.on('status', (s) => {
        if (waiting(s)) return;
        off();
        resolve();
      });
    });
  }

  /** `auth:refresh` with `token`, also kept for later handshakes; reconnects first if the server let the socket go. */
  async refreshToken(token: string): Promise<CommandResults['auth:refresh']> {
    this.token = token;
    if (!this.closedFlag && !this.socket.active) this.connect();
    const data = await this.command('auth:refresh', { token });
    this.scheduleRefresh(data.exp);
    return data;
  }

  /** The server's `auth:expired`: it disconnects the socket next. */
  expired(exp: number): void {
    this.expiredByServer = true;
    this.events.emit('authExpired', { exp });
  }

  private async handshakeAuth(): Promise<HandshakeAuth> {
    // The version this SDK speaks: a gateway that does not speak it refuses with UNSUPPORTED_PROTOCOL.
    const protocol = PROTOCOL_VERSION;
    try {
      const prefetched = this.prefetched;
      this.prefetched = undefined;
      // A prefetched token serves the handshake it was fetched for, not one long after (the server was down).
      const fresh = prefetched && Date.now() - prefetched.at < PREFETCH_FRESH_MS ? prefetched.token : undefined;
      const token = fresh ? await fresh : this.getToken ? await this.getToken() : this.token;
      this.tokenFetchFailed = false;
      if (token) this.keepAffinity(token);
      this.token = token;
      this.handshakeToken = token;
      return token ? { token, protocol } : { protocol };
    } catch (err) {
      // The handshake goes on without a token (and is refused); handleConnectError retries with backoff.
      this.tokenFetchFailed = true;
      this.report(new ChatError('UNAUTHORIZED', 'getToken failed', { cause: err }));
      return { protocol };
    }
  }

  private handleConnect(): void {
    const reconnected = this.everConnected;
    this.everConnected = true;
    this.connectedAt = Date.now();
    this.expiredByServer = false;
    this.setStatus('connected');
    if (this.handshakeToken) this.scheduleRefresh(jwtExp(this.handshakeToken));
    this.onConnected(reconnected);
  }

  private handleDisconnect(): void {
    clearTimeout(this.refreshTimer);
    if (this.closedFlag) return;
    if (Date.now() - this.connectedAt > STABLE_CONNECTION_MS) this.reconnectAttempts = 0;
    // Still active: the connection dropped, and socket.io-client's manager reconnects with its own backoff.
    if (this.socket.active) return this.setStatus('reconnecting');
    // 'io server disconnect': the server let this socket go on purpose (its user was erased, its token expired).
    // Like socket.io-client, do not come back by ourselves — except after `auth:expired` when getToken can renew.
    if (this.expiredByServer && this.getToken) return this.scheduleReconnect();
    this.setStatus('disconnected');
  }

  private handleConnectError(err: Error & { data?: Partial<ConnectErrorData> }): void {
    if (this.closedFlag) return;
    // Still active: a transport failure (server down, Origin refused), which the manager retries by itself.
    if (this.socket.active) return this.setStatus(this.everConnected ? 'reconnecting' : 'connecting');
    // UNSUPPORTED_PROTOCOL ends here, with no retry: only another version of this SDK can get in.
    const code = err.data?.code;
    if (code === 'TOKEN_EXPIRED') this.events.emit('authExpired', {});
    this.report(new ChatError(code ?? 'UNAUTHORIZED', err.message || 'connection refused', { cause: err }));
    // Worth another handshake: a fresh token may get in, another tab may have closed. A bad token would not.
    const retry = (code === 'TOKEN_EXPIRED' && this.getToken !== undefined) || this.tokenFetchFailed || code === 'TOO_MANY_CONNECTIONS';
    if (retry) this.scheduleReconnect();
    else this.setStatus('disconnected');
  }

  private scheduleReconnect(): void {
    clearTimeout(this.reconnectTimer);
    this.setStatus('reconnecting');
    const base = Math.min(MAX_RECONNECT_DELAY_MS, 1000 * 2 ** this.reconnectAttempts++);
    const delay = base / 2 + Math.random() * (base / 2);
    this.reconnectTimer = setTimeout(() => {
      if (!this.closedFlag && !this.socket.active) this.socket.connect();
    }, delay);
  }

  /** Renews the token on the open socket before `exp`: `refreshBeforeMs` ahead, or halfway if less time remains. */
  private scheduleRefresh(exp: number | undefined): void {
    clearTimeout(this.refreshTimer);
    this.tokenExp = exp;
    if (!this.getToken || exp === undefined || this.closedFlag) return;
    const remaining = exp * 1000 - Date.now();
    if (remaining <= 0) return;
    const delay = Math.max(remaining - Math.min(this.refreshBeforeMs, remaining / 2), 1000);
    this.refreshTimer = setTimeout(() => void this.refreshNow(), delay);
  }

  private async refreshNow(): Promise<void> {
    if (!this.getToken || !this.socket.connected) return;
    try {
      await this.refreshToken(await this.getToken());
    } catch (err) {
      this.report(err);
      const exp = this.tokenExp;
      if (exp !== undefined && Date.now() + REFRESH_RETRY_MS < exp * 1000) {
        this.refreshTimer = setTimeout(() => void this.refreshNow(), REFRESH_RETRY_MS);
      }
    }
  }

  private affinityKnown(): boolean {
    const query = this.socket.io.opts.query as Record<string, string> | undefined;
    return query?.[AFFINITY_PARAM] !== undefined;
  }

  /**
   * Puts the affinity key of `token`'s user in the query of the connections to come (socket.io-client's documented
   * way to change the query between reconnects): every request of a long-polling session carries it, so a balancer
   * hashing on it keeps the session on one node as well as the user's tabs together.
   */
  private keepAffinity(token: string): void {
    if (!this.affinity) return;
    const sub = jwtSub(token);
    if (sub === undefined) return;
    const opts = this.socket.io.opts;
    opts.query = { ...(opts.query as Record<string, string> | undefined), [AFFINITY_PARAM]: affinityKey(sub) };
  }

  private report(err: unknown): void {
    if (this.events.has('error')) this.events.emit('error', err instanceof Error ? err : new Error(String(err)));
  }

  private setStatus(status: ConnectionStatus): void {
    if (status === this.currentStatus) return;
    this.currentStatus = status;
    this.events.emit('status', status);
  }
}
