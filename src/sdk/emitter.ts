/** Listener maps: event name → listener signature (an interface qualifies; no index signature needed). */
export type Listeners<E> = { [K in keyof E]: (...args: never[]) => void };

/**
 * A small typed event emitter (no Node `events`, so it bundles for browsers). A listener that throws does not stop
 * the others: the error goes to `onListenerError`.
 *
 * @example
 * const e = new Emitter<{ ping: (n: number) => void }>();
 * const off = e.on('ping', (n) => console.log(n));
 * e.emit('ping', 1);
 * off();
 */
export class Emitter<E extends Listeners<E>> {
  private readonly listeners = new Map<keyof E, Set<E[keyof E]>>();
  private readonly onListenerError: (err: unknown, event: keyof E) => void;

  constructor(onListenerError?: (err: unknown, event: keyof E) => void) {
    this.onListenerError =
      onListenerError ??
      ((err) => {
        // Rethrown outside the emit so one broken listener cannot corrupt the caller's state updates.
        queueMicrotask(() => {
          throw err;
        });
      });
  }

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, listener: E[K]): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Removes a listener added with `on`. */
  off<K extends keyof E>(event: K, listener: E[K]): void {
    this.listeners.get(event)?.delete(listener);
  }

  /** True when at least one listener is registered for `event`. */
  has(event: keyof E): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0;
  }

  emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as (...a: Parameters<E[K]>) => void)(...args);
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
  }

  removeAll(): void {
    this.listeners.clear();
  }
}
