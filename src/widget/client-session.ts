/**
 * The widget's connection to the gateway: one SDK client at a time, made from the element's token settings and
 * replaced when they change, and whose token it is (the `sub` claim keeps each user's remembered conversation
 * apart).
 */
import { createChatClient, jwtSub, type ChatClient } from '../sdk/index.ts';

/** Returns a JWT for the gateway (`sub` = the user id, `exp` required); called for every handshake and renewal. */
export type TokenGetter = () => string | Promise<string>;

type Transport = 'websocket' | 'polling';

/** The `transports` attribute (a comma list); undefined leaves the SDK's default (WebSocket only). */
export function parseTransports(attribute: string | null): Transport[] | undefined {
  const list = (attribute ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t): t is Transport => t === 'websocket' || t === 'polling');
  return list.length ? list : undefined;
}

export class ClientSession {
  private chat: ChatClient | undefined;
  private offs: (() => void)[] = [];
  private tokenValue: string | undefined;
  private tokenGetter: TokenGetter | undefined;
  private user: string | undefined;
  /** Bumped on every stop: a token fetched for an older client says nothing about the current user. */
  private generation = 0;

  /** The client in use; undefined while stopped or without a token. */
  get client(): ChatClient | undefined {
    return this.chat;
  }

  /** The `sub` of the latest token; undefined until one is known. */
  get userId(): string | undefined {
    return this.user;
  }

  get token(): string | undefined {
    return this.tokenValue;
  }

  get getToken(): TokenGetter | undefined {
    return this.tokenGetter;
  }

  /**
   * Sets the fixed token; returns whether the client must be restarted for it. A new token of the same user is
   * renewed on the open socket instead, keeping the socket and the view (unless a getter is set: it wins);
   * `onRenewalFailed` runs when the server refuses the renewal.
   */
  setToken(token: string | undefined, onRenewalFailed: () => void): boolean {
    if (token === this.tokenValue) return false;
    const previous = this.tokenValue;
    this.tokenValue = token;
    const chat = this.chat;
    if (chat && token && previous && !this.tokenGetter && jwtSub(token) === jwtSub(previous)) {
      chat.refreshToken(token).catch(onRenewalFailed);
      return false;
    }
    return true;
  }

  /** Sets the token getter; returns whether the client must be restarted for it. */
  setGetter(getter: TokenGetter | undefined): boolean {
    if (getter === this.tokenGetter) return false;
    this.tokenGetter = getter;
    return true;
  }

  /**
   * Creates the client (after `stop`), or nothing without a token or getter. `subscribe` adds the listeners and
   * returns their unsubscribers, removed before the client closes so its last events reach nobody.
   */
  start(url: string, transports: Transport[] | undefined, subscribe: (chat: ChatClient) => (() => void)[]): ChatClient | undefined {
    if (!this.tokenValue && !this.tokenGetter) return undefined;
    const generation = this.generation;
    const getter = this.tokenGetter;
    this.user = this.tokenValue ? jwtSub(this.tokenValue) : undefined;
    const chat = createChatClient({
      url,
      token: this.tokenValue,
      getToken: getter
        ? async () => {
            const token = await getter();
            if (generation === this.generation) this.user = jwtSub(token);
            return token;
          }
        : undefined,
      transports,
    });
    this.chat = chat;
    this.offs = subscribe(chat);
    return chat;
  }

  stop(): void {
    for (const off of this.offs) off();
    this.offs = [];
    this.chat?.close();
    this.chat = undefined;
    this.generation++;
  }
}
