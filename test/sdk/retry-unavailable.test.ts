// A send the gateway answers UNAVAILABLE (here: a write that cannot commit within WRITE_TIMEOUT_MS, a row of the
// conversation locked by another connection) is sent again by the SDK after the retryAfterMs it was given, with the
// same clientMessageId: the user sees their message stored once, without an error.
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createChatClient } from '../../src/sdk/index.ts';
import { eventually, startCluster, type Cluster } from '../helpers/cluster.ts';

let cluster: Cluster;

/** message:send answered UNAVAILABLE so far, from the node's /metrics. */
async function unavailableSends(): Promise<number> {
  const text = await (await fetch(`${cluster.nodes[0]!.url}/metrics`)).text();
  return Number(text.match(/^chat_socket_events_total\{[^}]*event="message:send"[^}]*outcome="UNAVAILABLE"[^}]*\} (\d+)/m)?.[1] ?? 0);
}

beforeAll(async () => {
  cluster = await startCluster({ nodes: 1, env: { ASSISTANT: 'none', REDIS_URL: undefined, WRITE_TIMEOUT_MS: '400' } });
});
afterAll(async () => {
  await cluster?.close();
});

it('retries a send answered UNAVAILABLE after its retryAfterMs, and it is stored once', async () => {
  const user = cluster.user('retry');
  const chat = createChatClient({ url: cluster.nodes[0]!.url, token: cluster.tokenFor(user), sendAttempts: 4 });
  try {
    const { conversation } = await chat.createConversation({ title: 'locked for a moment' });
    const blocker = new pg.Client({ connectionString: cluster.db.url });
    await blocker.connect();
    try {
      await blocker.query('begin');
      await blocker.query('select id from conversations where id = $1 for update', [conversation.id]);
      const sending = chat.send({ conversationId: conversation.id, content: 'patience', clientMessageId: 'retry-1' });
      // The first attempt meets the lock and is answered UNAVAILABLE (retryAfterMs 1000); the lock goes then, before
      // the retry comes.
      await eventually(async () => ((await unavailableSends()) > 0 ? true : undefined), 'a send answered UNAVAILABLE');
      await blocker.query('rollback');
      const { message } = await sending;
      expect(message.content).toBe('patience');
    } finally {
      await blocker.end();
    }
    const rows = await cluster.db.query('select id from messages where user_id = $1', [user]);
    expect(rows).toHaveLength(1);
  } finally {
    chat.close();
  }
});
