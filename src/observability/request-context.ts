import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/** Which request a line of work belongs to, wherever in the call it is logged. */
export interface RequestContext {
  requestId: string;
  /** The door it came through. */
  door: 'rest' | 'socket';
}

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs `fn` as part of a request: what it audits carries the request's id. */
export function withRequest<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}

/** A request id a client or proxy sent (X-Request-Id) when it is a sane one, else a new one. */
export function requestIdFrom(given: string | undefined): string {
  return given && /^[\w.:-]{1,100}$/.test(given) ? given : randomUUID();
}
