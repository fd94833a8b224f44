import type { Orm } from '../db/types.ts';
import { messageFromRow } from '../messages/message.dto.ts';
import type { MessageStatus } from '../messages/message.entity.ts';
import type { MessageDto } from '../shared/events.ts';
import { ReplyErrorCode, replyError } from './reply-errors.ts';
import { ToolCallError } from './tool-calls.ts';

/**
 * Writes of a streaming reply. Every one is conditional on `status = 'streaming'`: whoever ends a reply first
 * (its runner, a stop handled on a node that does not run it, or the sweeper of interrupted replies) wins,
 * and the others see zero rows and step back. Times come from the database clock so nodes agree on staleness.
 */
export function createReplyStore(orm: Orm) {
  /** Saves the partial text; false when the reply was ended elsewhere. Also serves as the reply's heartbeat. */
  async function saveProgress(messageId: string, content: string, metadata: Record<string, unknown>): Promise<boolean> {
    const rows = await orm.em
      .fork()
      .execute<{ id: string }[]>(
        `update messages set content = ?, metadata = ?::jsonb, updated_at = now() where id = ? and status = 'streaming' returning id`,
        [content, JSON.stringify(metadata), messageId],
      );
    return rows.length > 0;
  }

  /** Ends a reply; undefined when it had already been ended elsewhere. */
  async function finish(
    messageId: string,
    status: Exclude<MessageStatus, 'streaming'>,
    metadata: Record<string, unknown>,
    content?: string,
  ): Promise<MessageDto | undefined> {
    const rows = await orm.em.fork().execute<Record<string, unknown>[]>(
      `update messages set status = ?, metadata = ?::jsonb, content = coalesce(?, content), updated_at = now()
       where id = ? and status = 'streaming' returning *`,
      [status, JSON.stringify(metadata), content ?? null, messageId],
    );
    return rows[0] ? messageFromRow(rows[0]) : undefined;
  }

  /** The replies whose heartbeat stopped: still streaming, and not saved for `staleMs`. */
  async function stale(staleMs: number): Promise<string[]> {
    const rows = await orm.em
      .fork()
      .execute<{ id: string }[]>(`select id from messages where status = 'streaming' and updated_at < now() - make_interval(secs => ?)`, [
        staleMs / 1000,
      ]);
    return rows.map((row) => row.id);
  }

  /**
   * Marks as failed those of `ids` whose heartbeat is still stopped (their node died), keeping the partial text; a
   * tool call its node left running is shown as failed too.
   */
  async function failStale(staleMs: number, ids: string[]): Promise<{ userId: string; message: MessageDto }[]> {
    if (ids.length === 0) return [];
    const error = replyError(ReplyErrorCode.INTERRUPTED);
    const rows = await orm.em.fork().execute<Record<string, unknown>[]>(
      `update messages set status = 'failed', updated_at = now(),
         metadata = coalesce(metadata, '{}'::jsonb)
           || jsonb_build_object('error', jsonb_build_object('code', ?::text, 'message', ?::text))
           || case when jsonb_typeof(metadata->'toolCalls') = 'array' then jsonb_build_object('toolCalls', (
                select coalesce(jsonb_agg(case when c->>'status' = 'running'
                  then c || jsonb_build_object('status', 'failed', 'error', ?::text) else c end order by n), '[]'::jsonb)
                from jsonb_array_elements(metadata->'toolCalls') with ordinality as t(c, n)))
              else '{}'::jsonb end
       where id in (select jsonb_array_elements_text(?::jsonb)::uuid)
         and status = 'streaming' and updated_at < now() - make_interval(secs => ?) returning *`,
      [error.code, error.message, ToolCallError.INTERRUPTED, JSON.stringify(ids), staleMs / 1000],
    );
    return rows.map((row) => ({ userId: String(row.user_id), message: messageFromRow(row) }));
  }

  return { saveProgress, finish, stale, failStale };
}

export type ReplyStore = ReturnType<typeof createReplyStore>;
