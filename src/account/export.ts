import { conversationFromRow } from '../conversations/conversation.dto.ts';
import type { Orm } from '../db/types.ts';
import { messageFromRow } from '../messages/message.dto.ts';

/** Rows read per round trip: the export holds one page at a time, whatever the user's history. */
const CONVERSATIONS_PAGE = 100;
const MESSAGES_PAGE = 500;

/**
 * All of one user's conversations and messages as one JSON document, produced piece by piece: `{ userId,
 * exportedAt, conversations: [{ ...conversation, messages: [...] }] }`, conversations oldest first, messages by
 * seq. Pages are read by keyset (never an offset), so a long history costs the same per page throughout.
 */
export async function* exportUser(orm: Orm, userId: string): AsyncGenerator<string, { conversations: number; messages: number }> {
  const em = orm.em.fork();
  const counted = { conversations: 0, messages: 0 };
  yield `{"userId":${JSON.stringify(userId)},"exportedAt":${JSON.stringify(new Date().toISOString())},"conversations":[`;
  let after: { createdAt: unknown; id: string } | undefined;
  for (;;) {
    const conversations = await em.execute<Record<string, unknown>[]>(
      `select * from conversations where user_id = ? ${after ? 'and (created_at, id) > (?, ?)' : ''} order by created_at, id limit ?`,
      after ? [userId, after.createdAt, after.id, CONVERSATIONS_PAGE] : [userId, CONVERSATIONS_PAGE],
    );
    for (const row of conversations) {
      const conversation = conversationFromRow(row);
      const head = JSON.stringify(conversation);
      yield `${counted.conversations++ > 0 ? ',' : ''}${head.slice(0, -1)},"messages":[`;
      let seq = 0;
      let first = true;
      for (;;) {
        const messages = await em.execute<Record<string, unknown>[]>(
          'select * from messages where conversation_id = ? and user_id = ? and seq > ? order by seq limit ?',
          [conversation.id, userId, seq, MESSAGES_PAGE],
        );
        if (messages.length === 0) break;
        const page = messages.map((m) => JSON.stringify(messageFromRow(m))).join(',');
        yield `${first ? '' : ','}${page}`;
        first = false;
        counted.messages += messages.length;
        seq = Number(messages.at(-1)!.seq);
        if (messages.length < MESSAGES_PAGE) break;
      }
      yield ']}';
    }
    if (conversations.length < CONVERSATIONS_PAGE) break;
    const last = conversations.at(-1)!;
    after = { createdAt: last.created_at, id: String(last.id) };
  }
  yield ']}';
  return counted;
}
