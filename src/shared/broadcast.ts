import type { NotificationName, NotificationPayloads } from './events.ts';

/** A notification for every tab of one user; services return these and the caller publishes them after it answers. */
export type Broadcast = {
  [K in NotificationName]: { userId: string; event: K; payload: NotificationPayloads[K] };
}[NotificationName];

/** The result of a write: what to answer, and what to tell the user's tabs once answered. */
export interface Outcome<T> {
  data: T;
  broadcasts: Broadcast[];
}

export type Publisher = (broadcasts: Broadcast[]) => void;
