// BENCH ONLY: opens `count` authenticated idle sockets (one user each) to a node and holds them until told
// to close. A process of its own because one process may hold at most 20,000 file descriptors here.
import { io, type Socket } from 'socket.io-client';
import { signToken } from '../../src/auth/jwt.ts';

const [url, secret, first, count] = [process.argv[2]!, process.argv[3]!, Number(process.argv[4]), Number(process.argv[5])];
const sockets: Socket[] = [];
const CONCURRENCY = 200;

for (let start = first; start < first + count; start += CONCURRENCY) {
  const batch = [];
  for (let i = start; i < Math.min(start + CONCURRENCY, first + count); i++) {
    const socket = io(`${url}/chat`, {
      auth: { token: signToken(secret, `mem-${i}`, { expiresInS: 3600 }) },
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
    });
    sockets.push(socket);
    batch.push(
      new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', reject);
      }),
    );
  }
  await Promise.all(batch);
}
process.send!({ connected: sockets.length });
process.on('message', (message) => {
  if (message === 'close') {
    for (const socket of sockets) socket.close();
    setTimeout(() => process.exit(0), 200);
  }
});
