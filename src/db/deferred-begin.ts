import type { Client, Pool, QueryResult } from 'pg';

/**
 * Sends a transaction's BEGIN together with its first statement, in one round trip instead of two.
 *
 * MikroORM starts a transaction (through Kysely) with a plain `begin` and waits for its answer before the first
 * statement. Each round trip to PostgreSQL costs a write, a wake-up of the server process and a wait; a unit
 * of work that writes one row (a new conversation) makes three (begin, insert, commit), and this saves one.
 * (The append batch is one statement with no BEGIN at all: see append-batcher.ts.)
 *
 * On every pooled client, `begin` is answered at once and held back; the next statement goes out as the one
 * simple-protocol query `begin;<statement>`. An explicit BEGIN opens a transaction block that outlives the
 * query, so what follows is inside the transaction exactly as before. A failing statement leaves it aborted,
 * as before, and the rollback that follows goes out as usual. A transaction that ends before any statement
 * sends nothing. Transactions started another way (`start transaction isolation level …`) are left alone.
 *
 * A first statement this cannot join to the BEGIN (one with parameters; MikroORM inlines them, other callers may
 * not) is sent after a real `begin` has succeeded. A streamed one (a pg-cursor) is queued behind it: pg runs a
 * client's queries in order.
 */
export function deferBegin(pool: Pool): void {
  pool.on('connect', (client) => deferBeginOn(client));
  // A client back in the pool holds no transaction. Kysely always ends one before releasing its connection;
  // should anything else leave a `begin` held, the next user of the client must not start inside it.
  pool.on('release', (_err: unknown, client: Client) => holding.delete(client));
}

type QueryFn = (...args: unknown[]) => unknown;

/** Clients whose `begin` was answered but not yet sent. */
const holding = new WeakSet<Client>();

export function deferBeginOn(client: Client): void {
  const query = client.query.bind(client) as QueryFn;
  (client as unknown as { query: QueryFn }).query = (...args: unknown[]) => {
    const [text, values, callback] = args;
    const plain = typeof text === 'string' && callback === undefined && typeof values !== 'function';
    const noValues = values === undefined || (Array.isArray(values) && values.length === 0);
    // Only short texts can be a bare transaction command; long statements are not lowered and trimmed.
    const command = plain && noValues && text.length <= 12 ? text.trim().toLowerCase() : '';
    if (command === 'begin') {
      holding.add(client);
      return Promise.resolve(emptyResult('BEGIN'));
    }
    if (!holding.delete(client)) return query(...args);
    if (command === 'commit' || command === 'rollback') return Promise.resolve(emptyResult(command.toUpperCase()));
    if (plain && noValues) {
      // pg answers a multi-statement query with one result per statement: the BEGIN's is dropped, and the caller
      // gets what it would have got for its own text.
      const results = query(`begin;${text}`) as Promise<QueryResult | QueryResult[]>;
      return results.then((r) => (Array.isArray(r) ? (r.length === 2 ? r[1]! : r.slice(1)) : r));
    }
    const submittable = typeof text === 'object' && text !== null && typeof (text as { submit?: unknown }).submit === 'function';
    if (submittable) {
      // pg hands a stream back at once, so it cannot wait for the begin: it is queued behind it instead.
      (query('begin') as Promise<unknown>).catch(() => undefined);
      return query(...args);
    }
    // Sent only once the transaction exists: a statement that runs after a failed begin would not be in one.
    const started = query('begin') as Promise<unknown>;
    if (typeof callback === 'function' || typeof values === 'function') {
      const done = (typeof callback === 'function' ? callback : values) as (err: unknown) => void;
      started.then(() => query(...args), done);
      return undefined;
    }
    return started.then(() => query(...args));
  };
}

function emptyResult(command: string): QueryResult {
  return { command, rowCount: null, oid: 0, rows: [], fields: [] };
}
