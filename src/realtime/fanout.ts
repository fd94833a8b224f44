import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Broadcast } from '../shared/broadcast.ts';
import { userRoom, type MessageDto, type SyncRequired } from '../shared/events.ts';
import { withTimeout } from '../shared/time-bounds.ts';
import { CONGESTED_ROOM } from './backpressure.ts';
import type { RedisClients } from './redis.ts';
import { REMOTE_STOP_TIMEOUT_MS } from './socket-server.ts';
import type { ChatNamespace } from './types.ts';

/**
 * How the gateway reaches a user's tabs and the other nodes: through the namespace's adapter (Redis between nodes,
 * memory on one). Nothing here knows which node holds which socket.
 */
export function createFanout(nsp: ChatNamespace, o: { redis?: RedisClients; syncSpreadMs: number; metrics: Metrics; log: Logger }) {
  // The Redis pub/sub adapter delivers at most once: what a broken connection dropped is gone, silently. Tabs repair
  // a gap they can see (a seq missing) by themselves; these tell them to look when they cannot see it (the last
  // events of a conversation lost, a reply's end lost).
  o.redis?.onRecovery(({ client, lostPublishes }) => {
    const sync: SyncRequired = { reason: 'fanout_interrupted', spreadMs: o.syncSpreadMs };
    if (client === 'sub') {
      // This node heard nothing from the others meanwhile: its own tabs may have missed anything.
      nsp.local.emit('sync:required', sync);
      o.metrics.syncRequired.inc({ scope: 'node' });
      o.log.warn({ sockets: nsp.sockets.size, spreadMs: sync.spreadMs }, "redis subscriber back: this node's tabs told to catch up");
    } else {
      // The other nodes heard nothing of this one's publishes that were dropped, whichever users they were for.
      nsp.emit('sync:required', sync);
      o.metrics.syncRequired.inc({ scope: 'cluster' });
      o.log.warn({ lostPublishes, spreadMs: sync.spreadMs }, "redis publisher back: every node's tabs told to catch up");
    }
  });

  /**
   * Asks every other node and resolves with their answers, those that came in time. Never hangs: when Redis is away
   * the adapter cannot count the nodes, swallows that error and never settles, so nothing is asked then, and the
   * wait is bounded besides (a Redis that hangs).
   */
  async function askOtherNodes<T>(ask: () => Promise<T[]>): Promise<T[]> {
    if (o.redis?.degraded()) return [];
    // A node that does not answer in time (it died) leaves the answers of the others in err.responses.
    return withTimeout(ask(), REMOTE_STOP_TIMEOUT_MS + 500, () => new Error('no answer from the other nodes')).catch(
      (err: { responses?: T[] }) => err.responses ?? [],
    );
  }

  return {
    /** Sends committed changes to every tab of their user, on every node. */
    publish(broadcasts: Broadcast[]) {
      for (const b of broadcasts) {
        const tabs = nsp.to(userRoom(b.userId));
        // A tab whose connection is congested (it is not taking what it is sent) misses deltas rather than have the
        // node hold them; it takes the whole text from message:updated or history, as after any gap. Each node
        // judges its own sockets.
        const to = b.event === 'message:delta' ? tabs.except(CONGESTED_ROOM) : tabs;
        (to.emit as (event: string, payload: unknown) => boolean)(b.event, b.payload);
      }
    },
    /** Closes every socket of a user, on every node (after erasure). */
    disconnectUser(userId: string) {
      nsp.in(userRoom(userId)).disconnectSockets(true);
    },
    /** Asks the other nodes to stop a reply; resolves with the stopped reply from the node that ran it. */
    stopElsewhere: o.redis
      ? async (messageId: string): Promise<MessageDto | undefined> => {
          const answers = await askOtherNodes(() => nsp.serverSideEmitWithAck('assistant:stop', messageId));
          return answers.find((m): m is MessageDto => Boolean(m));
        }
      : undefined,
    /** The replies the other nodes run now (of those that answer in time). */
    runningElsewhere: o.redis
      ? async (): Promise<string[]> => (await askOtherNodes(() => nsp.serverSideEmitWithAck('assistant:running'))).flat()
      : undefined,
    /** Answers the other nodes' question: which replies run here. */
    answerRunning(runningHere: () => string[]) {
      nsp.on('assistant:running', (ack: (messageIds: string[]) => void) => ack(runningHere()));
    },
    /** Answers the stops other nodes forward: with the stopped reply if it ran here, else null. */
    answerStops(stopIfRunningHere: (messageId: string) => Promise<MessageDto | null>) {
      nsp.on('assistant:stop', (messageId: string, ack: (m: MessageDto | null) => void) => {
        stopIfRunningHere(messageId).then(ack, () => ack(null));
      });
    },
  };
}

export type Fanout = ReturnType<typeof createFanout>;
