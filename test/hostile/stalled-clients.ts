// Clients that join a user's room and then stop taking what the server sends, as a hostile or broken client
// does: nothing of socket.io-client, which always reads. Each speaks just enough of Engine.IO and Socket.IO to
// open a /chat socket with a token.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export interface StalledClient {
  transport: 'websocket' | 'polling';
  /**
   * Whether the server has closed the connection, looked at once the test is over (WebSocket: the socket is read
   * again, and must close within a few seconds; polling: a request on the session answers that it is gone).
   */
  closed(): Promise<boolean>;
  destroy(): void;
}

/**
 * A WebSocket client over a real TCP socket: the upgrade, Engine.IO's open packet, the /chat CONNECT with the token
 * and its answer are read; then the socket is paused and never read again, so what the server sends fills the
 * kernel's buffers and then the server's.
 */
export function stalledWebSocket(url: string, token: string): Promise<StalledClient> {
  const { hostname, port, host } = new URL(url);
  const tcp: Socket = connect(Number(port), hostname);
  let closed = false;
  tcp.on('close', () => {
    closed = true;
  });
  tcp.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => fail(new Error(`no /chat CONNECT answer over WebSocket; got: ${seen.slice(0, 300)}`)), 10_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      tcp.destroy();
      reject(err);
    };
    tcp.once('connect', () => {
      tcp.write(
        `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    let sentConnect = false;
    const onData = (chunk: Buffer) => {
      // Frames from the server are unmasked: the text of each packet appears as is in the byte stream.
      seen += chunk.toString('latin1');
      if (!seen.startsWith('HTTP/1.1 101')) return fail(new Error(`upgrade refused: ${seen.split('\r\n')[0]}`));
      if (!sentConnect && seen.includes('0{"sid"')) {
        sentConnect = true;
        tcp.write(maskedTextFrame(`40/chat,${JSON.stringify({ token })}`));
      }
      if (seen.includes('40/chat,{"sid"')) {
        clearTimeout(timer);
        tcp.off('data', onData);
        // From here on nothing is read: the kernel's receive buffer fills, then the server's send buffers.
        tcp.pause();
        resolve({
          transport: 'websocket',
          closed() {
            if (closed) return Promise.resolve(true);
            // A paused socket does not notice the server's close: read (and drop) what is left until it does.
            tcp.resume();
            return new Promise((done) => {
              const timer = setTimeout(() => done(false), 5_000);
              tcp.once('close', () => {
                clearTimeout(timer);
                done(true);
              });
            });
          },
          destroy: () => tcp.destroy(),
        });
      } else if (seen.includes('44/chat,')) {
        fail(new Error(`CONNECT refused: ${seen.slice(seen.indexOf('44/chat,'), seen.indexOf('44/chat,') + 200)}`));
      }
    };
    tcp.on('data', onData);
    tcp.once('error', fail);
  });
}

/**
 * A long-polling client that opens an Engine.IO session, sends the /chat CONNECT with the token in a POST, and
 * never polls again: everything the server sends it waits in the session's write buffer.
 */
export async function stalledPolling(url: string, token: string): Promise<StalledClient> {
  const base = `${url}/socket.io/?EIO=4&transport=polling`;
  const open = await (await fetch(base)).text();
  const sid = (JSON.parse(open.slice(open.indexOf('{'))) as { sid: string }).sid;
  const post = await fetch(`${base}&sid=${sid}`, { method: 'POST', body: `40/chat,${JSON.stringify({ token })}` });
  const answer = await post.text();
  if (post.status !== 200 || answer !== 'ok') throw new Error(`CONNECT POST answered ${post.status} ${answer}`);
  return {
    transport: 'polling',
    // Polled only to look, once the test is over: a gone session answers 400 (unknown sid), or a close packet.
    async closed() {
      const res = await fetch(`${base}&sid=${sid}`, { method: 'POST', body: '3' }).catch(() => undefined);
      if (!res) return true;
      await res.body?.cancel();
      return res.status === 400;
    },
    destroy: () => undefined,
  };
}

/** A client-to-server WebSocket text frame (clients must mask theirs). */
function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  let header: Buffer;
  if (payload.length < 126) {
    header = Buffer.from([0x81, 0x80 | payload.length]);
  } else if (payload.length < 65_536) {
    header = Buffer.alloc(4);
    header[0] = 0x81;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x81;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  const masked = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) masked[i] = payload[i]! ^ mask[i % 4]!;
  return Buffer.concat([header, mask, masked]);
}
