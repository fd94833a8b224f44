import { pino } from 'pino';
import type { Logger } from './logger.ts';
import { currentRequest } from './request-context.ts';

/**
 * What the audit trail records of one operation on a user's conversations. Ids and outcomes only: never message
 * content, titles or tokens.
 */
export interface AuditEntry {
  userId: string;
  /** `conversation.list|get|create|reuse|rename|delete`, `message.append|history`, `assistant.stop`, `user.export|erase`. */
  op: string;
  outcome: 'ok' | 'duplicate' | 'not_found' | 'error';
  conversationId?: string;
  messageId?: string;
  seq?: number;
  /** How many items a read returned. */
  count?: number;
}

export type Audit = (entry: AuditEntry) => void;

/**
 * The audit trail: one JSON line per operation, reads included, with the node, the request id and the door it
 * came through (`rest` or `socket`). By default the lines go to the application log (key `audit`); with a path
 * (AUDIT_LOG) they go to a file of their own, apart from it, for a collector that keeps them longer.
 */
export function createAudit(o: { log: Logger; node: string; path?: string }): Audit {
  const sink = o.path
    ? pino(
        { base: { node: o.node }, timestamp: pino.stdTimeFunctions.isoTime },
        pino.destination({ dest: o.path, sync: false, mkdir: true }),
      )
    : o.log;
  return (entry) => {
    const request = currentRequest();
    sink.info({ audit: { ...entry, requestId: request?.requestId, door: request?.door } }, `audit ${entry.op} ${entry.outcome}`);
  };
}
