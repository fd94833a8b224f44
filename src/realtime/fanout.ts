import type { Broadcast } from '../shared/broadcast.ts';
import { userRoom, type MessageDto } from '../shared/events.ts';
import type { ChatNamespace } from './types.ts';

/**
 * How the gateway reaches a user's tabs and the other nodes: through the namespace's adapter (Redis between nodes,
 * memory on one). Nothing here knows which node holds which socket.
 */
export function createFanout(nsp: ChatNamespace, o: { peers: boolean }) {
  return {
    /** Sends committed changes to every tab of their user, on every node. */
    publish(broadcasts: Broadcast[]) {
      for (const b of broadcasts) {
        (nsp.to(userRoom(b.userId)).emit as (event: string, payload: unknown) => boolean)(b.event, b.payload);
      }
    },
    /** Closes every socket of a user, on every node (after erasure). */
    disconnectUser(userId: string) {
      nsp.in(userRoom(userId)).disconnectSockets(true);
    },
    /** Asks the other nodes to stop a reply; resolves with the stopped reply from the node that ran it. */
    stopElsewhere: o.peers
      ? async (messageId: string): Promise<MessageDto | undefined> => {
          // A node that does not answer in time (it died) leaves the answers of the others in err.responses.
          const answers: (MessageDto | null)[] = await nsp
            .serverSideEmitWithAck('assistant:stop', messageId)
            .catch((err: { responses?: (MessageDto | null)[] }) => err.responses ?? []);
          return answers.find((m): m is MessageDto => Boolean(m));
        }
      : undefined,
    /** Answers the stops other nodes forward: with the stopped reply if it ran here, else null. */
    answerStops(stopIfRunningHere: (messageId: string) => Promise<MessageDto | null>) {
      nsp.on('assistant:stop', (messageId: string, ack: (m: MessageDto | null) => void) => {
        stopIfRunningHere(messageId).then(ack, () => ack(null));
      });
    },
  };
}

export type Fanout = ReturnType<typeof createFanout>;
