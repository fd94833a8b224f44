// Under overload, appends past the queue bound (APPEND_QUEUE_MAX) are refused at once with UNAVAILABLE instead
// of waiting for seconds; the ones accepted are stored with gap-free seqs, and nothing refused is stored.
import { expect, it } from 'vitest';
import { GatewayError } from '../../src/shared/errors.ts';
import type { TestDatabase } from '../helpers/db.ts';
import { gatewayOnFreshDatabase, type StartedGateway } from '../helpers/gateway.ts';

let db: TestDatabase;
let node: StartedGateway;

gatewayOnFreshDatabase((started) => ({ db, gateway: node } = started), { APPEND_QUEUE_MAX: '5' });

it('refuses appends past the queue bound with UNAVAILABLE and stores exactly the accepted ones', async () => {
  const { services } = node.gateway;
  const messages = services.messages;
  // One transaction at a time and at most 5 sends waiting for the next: 40 at once must overflow.
  const userId = 'overload-user';
  const { conversation } = (await services.conversations.create(userId, {})).data;
  const results = await Promise.allSettled(
    Array.from({ length: 40 }, (_, i) =>
      messages.append(userId, { conversationId: conversation.id, content: `m${i}`, clientMessageId: `o-${i}` }),
    ),
  );
  const accepted = results.filter((r) => r.status === 'fulfilled');
  const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  expect(refused.length).toBeGreaterThan(0);
  for (const r of refused) {
    expect(r.reason).toBeInstanceOf(GatewayError);
    expect((r.reason as GatewayError).code).toBe('UNAVAILABLE');
    expect((r.reason as GatewayError).retryAfterMs).toBeGreaterThan(0);
  }
  const stored = await db.query<{ seq: string; client_message_id: string }>(
    'select seq, client_message_id from messages where conversation_id = $1 order by seq',
    [conversation.id],
  );
  expect(stored.map((r) => Number(r.seq))).toEqual(Array.from({ length: accepted.length }, (_, i) => i + 1));
  const acceptedIds = accepted.map(
    (r) => (r as PromiseFulfilledResult<{ data: { message: { clientMessageId: string | null } } }>).value.data.message.clientMessageId,
  );
  expect(new Set(stored.map((r) => r.client_message_id))).toEqual(new Set(acceptedIds));
});
