// The rules of the back-pressure sweep, on stand-ins for Engine.IO connections (their write buffer, their
// transport) and Socket.IO sockets (their rooms), with fake timers: when a connection's sockets join and leave
// the congested room, which connections are cut and why, and what is counted and logged. The same sweep against
// real clients that stop reading is test/hostile/backpressure.test.ts.
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import type { Logger } from '../../src/observability/logger.ts';
import { createMetrics, type Metrics } from '../../src/observability/metrics.ts';
import { BACKPRESSURE_TIMING, CONGESTED_ROOM, watchBackpressure, type Backpressure } from '../../src/realtime/backpressure.ts';
import type { ChatNamespace } from '../../src/realtime/types.ts';

const BOUND = 100_000;
const { sweepMs, graceMs } = BACKPRESSURE_TIMING;

class FakeConnection {
  writeBuffer: { type: string; data?: string | Buffer }[] = [];
  closedWith: boolean | undefined;
  terminated = false;
  transport: { name: string; writable: boolean; socket?: { bufferedAmount: number; terminate(): void } };
  constructor(name: 'websocket' | 'polling') {
    const connection = this;
    this.transport =
      name === 'websocket'
        ? {
            name,
            writable: true,
            socket: {
              bufferedAmount: 0,
              terminate() {
                connection.terminated = true;
              },
            },
          }
        : { name, writable: false };
  }
  /** Sets what waits: `queued` bytes in Engine.IO's write buffer (in packets of 1,000), `inWs` in ws's. */
  waiting(queued: number, inWs = 0) {
    this.writeBuffer = Array.from({ length: Math.ceil(queued / 1000) }, () => ({ type: 'message', data: 'x'.repeat(999) }));
    // ws's buffer fills only while a batch is being sent: Engine.IO's WebSocket transport is not writable then.
    if (this.transport.socket) {
      this.transport.socket.bufferedAmount = inWs;
      this.transport.writable = inWs === 0;
    }
  }
  close(discard?: boolean) {
    this.closedWith = discard;
  }
}

class FakeSocket {
  rooms = new Set<string>(['user:u']);
  readonly conn: FakeConnection;
  readonly data: { userId: string };
  constructor(conn: FakeConnection, userId: string) {
    this.conn = conn;
    this.data = { userId };
  }
  join(room: string) {
    this.rooms.add(room);
  }
  leave(room: string) {
    this.rooms.delete(room);
  }
}

let sockets: Map<string, FakeSocket>;
let metrics: Metrics;
let warnings: Record<string, unknown>[];
let backpressure: Backpressure;

beforeEach(() => {
  vi.useFakeTimers();
  sockets = new Map();
  metrics = createMetrics('test');
  warnings = [];
  const log = { warn: (fields: Record<string, unknown>) => warnings.push(fields), debug: () => undefined } as unknown as Logger;
  backpressure = watchBackpressure({ sockets } as unknown as ChatNamespace, { maxBufferedBytes: BOUND, metrics, log });
});
afterEach(() => {
  backpressure.stop();
  vi.useRealTimers();
});

function add(conn: FakeConnection, userId = 'u'): FakeSocket {
  const socket = new FakeSocket(conn, userId);
  sockets.set(String(sockets.size), socket);
  return socket;
}

const sweeps = (n = 1) => vi.advanceTimersByTime(n * sweepMs);

async function counted(action: string): Promise<number> {
  const values = (await metrics.slowConsumers.get()).values;
  return values.find((v) => v.labels.action === action)?.value ?? 0;
}

it('the sockets of a connection past half the bound join the congested room, all of them, and leave it once under half', async () => {
  const conn = new FakeConnection('websocket');
  const [a, b] = [add(conn), add(conn)];
  const calm = add(new FakeConnection('websocket'));
  conn.waiting(40_000, 20_000);
  sweeps();
  expect([a.rooms.has(CONGESTED_ROOM), b.rooms.has(CONGESTED_ROOM)]).toEqual([true, true]);
  expect(calm.rooms.has(CONGESTED_ROOM)).toBe(false);
  expect(await counted('skipped_deltas')).toBe(1);

  conn.waiting(30_000, 10_000);
  sweeps();
  expect(a.rooms.has(CONGESTED_ROOM)).toBe(false);
  expect(b.rooms.has(CONGESTED_ROOM)).toBe(false);
  // A new episode is counted again; the connection was never cut.
  conn.waiting(60_000);
  sweeps();
  expect(await counted('skipped_deltas')).toBe(2);
  expect(conn.closedWith).toBeUndefined();
});

it('a connection over the bound for the grace period is cut (a WebSocket terminated at once), logged with its user and counted', async () => {
  const conn = new FakeConnection('websocket');
  add(conn, 'slow-user');
  conn.waiting(80_000, 40_000);
  sweeps(Math.floor(graceMs / sweepMs));
  expect(conn.closedWith).toBeUndefined();
  sweeps(2);
  expect(conn.terminated).toBe(true);
  expect(conn.closedWith).toBe(true);
  expect(await counted('disconnected')).toBe(1);
  expect(warnings).toEqual([expect.objectContaining({ userId: 'slow-user', reason: 'over_bound_too_long', transport: 'websocket' })]);
});

it('dipping under the bound restarts the grace period; staying between half and the bound is never cut', async () => {
  const conn = new FakeConnection('polling');
  add(conn);
  conn.waiting(150_000);
  sweeps(Math.floor(graceMs / sweepMs) - 2);
  conn.waiting(90_000);
  sweeps();
  conn.waiting(150_000);
  sweeps(Math.floor(graceMs / sweepMs) - 2);
  expect(conn.closedWith).toBeUndefined();
  conn.waiting(90_000);
  sweeps(100);
  expect(conn.closedWith).toBeUndefined();
  expect(await counted('disconnected')).toBe(0);
});

it('over twice the bound at two sweeps in a row is cut at once; one large answer that drains by the next sweep is not', async () => {
  const burst = new FakeConnection('websocket');
  add(burst);
  burst.waiting(0, 3 * BOUND);
  sweeps();
  burst.waiting(0, 10_000);
  sweeps();
  expect(burst.closedWith).toBeUndefined();

  const flooded = new FakeConnection('polling');
  add(flooded, 'flooder');
  flooded.waiting(2 * BOUND + 5_000);
  sweeps(2);
  expect(flooded.closedWith).toBe(true);
  expect(warnings).toEqual([expect.objectContaining({ userId: 'flooder', reason: 'over_twice_bound', transport: 'polling' })]);
  expect(await counted('disconnected')).toBe(1);
});

it('a connection that closed while congested is forgotten', async () => {
  const conn = new FakeConnection('polling');
  add(conn);
  conn.waiting(80_000);
  sweeps();
  sockets.clear();
  sweeps(100);
  // Had it been remembered, the grace period would have run out and it would be cut.
  expect(conn.closedWith).toBeUndefined();
  expect(await counted('disconnected')).toBe(0);
});
