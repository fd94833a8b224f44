/**
 * A list element kept in step with an array by key. Each item's element is created once, then updated in place
 * and moved only when out of order: a re-render keeps focus, text selection and scroll position, and a streaming
 * reply does not rebuild the messages around it.
 */

/** How a keyed list names, builds and refreshes the element of one item. */
export interface KeyedListSpec<T, E extends Element> {
  key(item: T): string;
  create(item: T): E;
  /** Brings an element (new or reused) up to date with its item; called on every render. */
  update(el: E, item: T): void;
}

export class KeyedList<T, E extends Element = HTMLLIElement> {
  private readonly container: Element;
  private readonly spec: KeyedListSpec<T, E>;
  private readonly els = new Map<string, E>();

  constructor(container: Element, spec: KeyedListSpec<T, E>) {
    this.container = container;
    this.spec = spec;
  }

  /** The element shown for `key`, if the last render had that item. */
  get(key: string): E | undefined {
    return this.els.get(key);
  }

  /** Makes the container show exactly `items`, in order. */
  render(items: readonly T[]): void {
    const keep = new Set<string>();
    let prev: Element | null = null;
    for (const item of items) {
      const key = this.spec.key(item);
      let el = this.els.get(key);
      if (!el) {
        el = this.spec.create(item);
        this.els.set(key, el);
      }
      this.spec.update(el, item);
      const expected: Element | null = prev ? prev.nextElementSibling : this.container.firstElementChild;
      if (expected !== el) this.container.insertBefore(el, expected);
      prev = el;
      keep.add(key);
    }
    for (const [key, el] of this.els) {
      if (keep.has(key)) continue;
      el.remove();
      this.els.delete(key);
    }
  }

  clear(): void {
    this.els.clear();
    this.container.replaceChildren();
  }
}
