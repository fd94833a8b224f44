// The protocol version at the handshake: today's clients (no version) and version 1 get in; any other version is
// refused with UNSUPPORTED_PROTOCOL before the token is looked at, and the SDK both sends its version and stops,
// with a clear error, at a gateway that does not speak it.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { io } from 'socket.io-client';
import { afterAll, describe, expect, it } from 'vitest';
import { ChatError, createChatClient, PROTOCOL_VERSION, type ConnectionStatus } from '../../src/sdk/index.ts';
import { gatewayOnFreshDatabase, type StartedGateway } from '../helpers/gateway.ts';
import type { ConnectError } from '../helpers/sockets.ts';

let gateway: StartedGateway;
gatewayOnFreshDatabase((started) => {
  gateway = started.gateway;
});

/** One handshake with `auth` as given; resolves with the refusal, or `connected` when it got in. */
function handshake(auth: Record<string, unknown>): Promise<ConnectError | 'connected'> {
  const socket = io(`${gateway.url}/chat`, { transports: ['websocket'], forceNew: true, reconnection: false, auth });
  return new Promise((resolve) => {
    socket.once('connect', () => {
      socket.disconnect();
      resolve('connected');
    });
    socket.once('connect_error', (err) => {
      socket.disconnect();
      resolve(err as ConnectError);
    });
  });
}

describe('the handshake', () => {
  it('accepts a client that names no version (written before versions were sent) and one that names this one', async () => {
    const token = gateway.tokenFor('proto-user');
    expect(PROTOCOL_VERSION).toBe(1);
    expect(await handshake({ token })).toBe('connected');
    expect(await handshake({ token, protocol: PROTOCOL_VERSION })).toBe('connected');
  });

  it('refuses any other version with UNSUPPORTED_PROTOCOL and the versions it speaks, even without a token', async () => {
    const token = gateway.tokenFor('proto-user');
    for (const protocol of [2, 0, '1', 1.5, 99]) {
      const refused = await handshake({ token, protocol });
      expect(refused).not.toBe('connected');
      const err = refused as ConnectError & { data: { supported?: number[] } };
      expect(err.data).toEqual({ code: 'UNSUPPORTED_PROTOCOL', supported: [1] });
      expect(err.message).toMatch(/protocol version 1.*update the client/);
    }
    // Checked first: a client of another version learns that, not that its token (here none) is refused.
    const untokened = (await handshake({ protocol: 2 })) as ConnectError;
    expect(untokened.data?.code).toBe('UNSUPPORTED_PROTOCOL');
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toMatch(/chat_handshakes_refused_total\{[^}]*reason="unsupported_protocol"[^}]*\} [1-9]/);
  });
});

describe('the SDK', () => {
  const closers: (() => void | Promise<void>)[] = [];
  afterAll(async () => {
    for (const close of closers) await close();
  });

  it('sends its version and gets into a gateway that speaks it', async () => {
    const chat = createChatClient({ url: gateway.url, token: gateway.tokenFor('proto-sdk') });
    closers.push(() => chat.close());
    await new Promise<void>((resolve) => chat.on('status', (s) => s === 'connected' && resolve()));
    expect(chat.connected).toBe(true);
  });

  it('stops with a ChatError UNSUPPORTED_PROTOCOL at a gateway of another version, and does not retry', async () => {
    // A stand-in for a later gateway that speaks only version 2: it refuses as the real one does, and records what
    // each handshake sent.
    const http = createServer();
    const future = new Server(http);
    const seen: unknown[] = [];
    future.of('/chat').use((socket, next) => {
      seen.push(socket.handshake.auth);
      const err = new Error('this gateway speaks protocol version 2, not 1: update the client') as Error & { data: unknown };
      err.data = { code: 'UNSUPPORTED_PROTOCOL', supported: [2] };
      next(err);
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => future.close(() => resolve())));

    const chat = createChatClient({ url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, token: gateway.tokenFor('old') });
    closers.push(() => chat.close());
    const statuses: ConnectionStatus[] = [];
    chat.on('status', (s) => statuses.push(s));
    const error = await new Promise<Error>((resolve) => chat.on('error', resolve));

    expect(error).toBeInstanceOf(ChatError);
    expect((error as ChatError).code).toBe('UNSUPPORTED_PROTOCOL');
    expect(error.message).toMatch(/update the client/);
    expect(seen).toEqual([{ token: expect.any(String), protocol: PROTOCOL_VERSION }]);
    // Only another version of the SDK could get in: no reconnect is scheduled (the shortest backoff is 0.5 s).
    await new Promise((r) => setTimeout(r, 1500));
    expect(seen).toHaveLength(1);
    expect(statuses.at(-1)).toBe('disconnected');
    expect(chat.status).toBe('disconnected');
  });
});
