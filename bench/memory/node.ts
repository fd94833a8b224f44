// BENCH ONLY: one gateway node for the memory measurement, run with --expose-gc so the parent can ask for a
// settled heap figure over IPC. Started by bench/memory/run.ts.
import { loadConfig } from '../../src/config.ts';
import { createGateway } from '../../src/gateway.ts';

const gateway = await createGateway(loadConfig(process.env));
const port = await gateway.listen(0, '127.0.0.1');
process.send!({ port });

const gc = (globalThis as { gc?: () => void }).gc;
process.on('message', async (message) => {
  if (message === 'measure') {
    for (let i = 0; i < 3; i++) {
      gc?.();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const usage = process.memoryUsage();
    process.send!({ heapUsed: usage.heapUsed, rss: usage.rss, sockets: gateway.sockets.nsp.sockets.size });
  } else if (typeof message === 'string' && message.startsWith('snapshot:')) {
    const { writeHeapSnapshot } = await import('node:v8');
    writeHeapSnapshot(message.slice('snapshot:'.length));
    process.send!({ done: true });
  } else if (message === 'close') {
    await gateway.close();
    process.exit(0);
  }
});
