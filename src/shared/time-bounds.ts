/** Settles as `promise` does, or rejects with `onTimeout()` once `ms` have passed (the timer never outlives it). */
export async function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for `promise` to settle, but no longer than `ms`; never rejects. For shutdown steps that must end. */
export async function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  await withTimeout(promise, ms, () => new Error('timed out')).catch(() => undefined);
}
