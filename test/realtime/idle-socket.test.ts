// An authenticated socket lets go of what only its handshake needed (the upgrade request and the response
// object Engine.IO makes for it), and it still works afterwards: commands, fan-out, a polling socket's upgrade,
// and the server noticing a tab that went away. The memory figure itself is `npm run bench:memory`.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MessageDto } from '../../src/shared/events.ts';
import { gatewayOnFreshDatabase, type StartedGateway } from '../helpers/gateway.ts';
import { closeAllTabs, connectTab } from '../helpers/sockets.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let gateway: StartedGateway;
gatewayOnFreshDatabase((started) => (gateway = started.gateway));
afterEach(() => closeAllTabs());

/**
 * Collects garbage until every ref is cleared, with a generous bound: what lets go only after a pending callback or
 * timer (a socket's handshake wrapping up) has all the time it needs, and a ref still held at the bound fails.
 */
async function expectAllCollected(refs: WeakRef<object>[]) {
  await vi.waitFor(
    () => {
      gc();
      expect(refs.map((ref) => ref.deref())).toEqual(refs.map(() => undefined));
    },
    { timeout: 15_000, interval: 100 },
  );
}

describe('an idle authenticated socket', () => {
  it('holds neither its upgrade request nor the response object, and still answers and receives', async () => {
    // A middleware is the one place that sees the upgrade's response object; it is taken out again at once,
    // so the other tests run the path the gateway runs.
    const held: WeakRef<object>[] = [];
    const engine = gateway.gateway.sockets.io.engine as unknown as { middlewares: unknown[]; use(fn: unknown): void };
    const watch = (req: object, res: object, next: () => void) => {
      held.push(new WeakRef(req), new WeakRef(res));
      next();
    };
    engine.use(watch);
    const user = `idle-${Date.now()}`;
    let tab, other;
    try {
      [tab, other] = [await connectTab(gateway.url, gateway.tokenFor(user)), await connectTab(gateway.url, gateway.tokenFor(user))];
    } finally {
      engine.middlewares.splice(engine.middlewares.indexOf(watch), 1);
    }
    expect(held).toHaveLength(4);

    await expectAllCollected(held);

    const ack = await tab.request('message:send', { content: 'after the trim', clientMessageId: 'idle-1' });
    expect(ack.ok).toBe(true);
    const sent = (ack as { data: { message: MessageDto } }).data.message;
    const created = await other.waitFor<{ message: MessageDto }>('message:created', (e) => e.message.id === sent.id);
    expect(created.message.content).toBe('after the trim');
  });

  it('is noticed when the connection drops without a goodbye', async () => {
    const user = `gone-${Date.now()}`;
    const tab = await connectTab(gateway.url, gateway.tokenFor(user));
    const serverSide = [...gateway.gateway.sockets.nsp.sockets.values()].find((s) => s.data.userId === user)!;
    const reason = new Promise<string>((resolve) => serverSide.once('disconnect', resolve));
    // The client's TCP connection ends with no Socket.IO or WebSocket close: only the TCP close tells the server.
    (tab.socket.io.engine.transport as unknown as { ws: { _socket: { destroy(): void } } }).ws._socket.destroy();
    expect(await reason).toBe('transport close');
    expect(gateway.gateway.sockets.nsp.sockets.has(serverSide.id)).toBe(false);
  });

  it('that started on long-polling upgrades to a WebSocket and keeps working', async () => {
    const tab = await connectTab(gateway.url, gateway.tokenFor(`polling-${Date.now()}`), { transports: ['polling', 'websocket'] });
    const engine = tab.socket.io.engine;
    if (engine.transport.name !== 'websocket') await new Promise((resolve) => engine.once('upgrade', resolve));
    expect(engine.transport.name).toBe('websocket');
    const ack = await tab.request('conversation:list', {});
    expect(ack.ok).toBe(true);
  });
});
