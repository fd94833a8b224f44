/**
 * What the gateway stored, read back through its REST API with each owner's token (the verification's storage
 * input). Any node serves any user, so a node that died during the run hands its readers over to the next one.
 */
import type { ConversationDto } from '../../src/shared/events.ts';
import type { StoredConversation, StoredMessage } from './verify.ts';

/** The REST page size limit of `GET …/messages` (the contract's maximum). */
const PAGE = 200;

interface HistoryPage {
  conversation: { id: string; lastSeq: number };
  messages: {
    id: string;
    seq: number;
    role: string;
    status: string;
    content: string;
    clientMessageId: string | null;
    metadata: Record<string, unknown> | null;
  }[];
  hasMore: boolean;
}

/** The REST page size limit of `GET /api/conversations`. */
const LIST_PAGE = 100;

/**
 * Pages through `GET /api/conversations/:id/messages?after=…&limit=200` with the owner's token. `content`: keep
 * each message's text (the convergence check compares it; the receipts check does not need it, and a long run
 * holds millions of messages).
 */
export async function readConversation(
  baseUrl: string,
  token: string,
  conversationId: string,
  signal?: AbortSignal,
  content = false,
): Promise<StoredConversation> {
  const messages: StoredMessage[] = [];
  let after = 0;
  let lastSeq = 0;
  for (;;) {
    const url = `${baseUrl}/api/conversations/${encodeURIComponent(conversationId)}/messages?after=${after}&limit=${PAGE}`;
    const page = await getJson<HistoryPage>(url, token, signal);
    lastSeq = page.conversation.lastSeq;
    for (const m of page.messages) {
      const replyToId = m.metadata?.replyToId;
      const errorCode = (m.metadata?.error as { code?: unknown } | undefined)?.code;
      messages.push({
        id: m.id,
        seq: m.seq,
        role: m.role,
        status: m.status,
        clientMessageId: m.clientMessageId,
        ...(typeof replyToId === 'string' ? { replyToId } : {}),
        ...(content ? { content: m.content } : {}),
        ...(typeof errorCode === 'string' ? { errorCode } : {}),
      });
    }
    const last = page.messages[page.messages.length - 1];
    if (!page.hasMore || !last) break;
    after = last.seq;
  }
  return { conversationId, lastSeq, messages };
}

/** Every conversation of the token's user, through `GET /api/conversations` (most recent activity first). */
export async function readConversationList(baseUrl: string, token: string, signal?: AbortSignal): Promise<ConversationDto[]> {
  const out: ConversationDto[] = [];
  let cursor: string | null = null;
  do {
    const query: string = cursor === null ? `limit=${LIST_PAGE}` : `limit=${LIST_PAGE}&cursor=${encodeURIComponent(cursor)}`;
    const page = await getJson<{ conversations: ConversationDto[]; nextCursor: string | null }>(
      `${baseUrl}/api/conversations?${query}`,
      token,
      signal,
    );
    out.push(...page.conversations);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return out;
}

/** GET with a bearer token; retries what may pass on a second try (429, 503, network errors) twice. */
async function getJson<T>(url: string, token: string, signal?: AbortSignal): Promise<T> {
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        signal: signal ?? AbortSignal.timeout(30_000),
      });
    } catch (err) {
      lastError = (err as Error).message;
      continue;
    }
    const text = await res.text();
    if (res.ok) return JSON.parse(text) as T;
    lastError = `HTTP ${res.status} ${text.slice(0, 200)}`;
    if (res.status !== 429 && res.status !== 503) break;
  }
  throw new Error(lastError);
}

/**
 * Reads every user's conversation back, `concurrency` at a time, from the node URLs in turn (any node serves any
 * user). A conversation that no node can serve becomes `{ error }`, which the verification reports.
 */
export async function readStored(
  users: { conversationId: string; token: () => string }[],
  urls: string[],
  concurrency: number,
  onProgress?: (done: number) => void,
): Promise<StoredConversation[]> {
  const out: StoredConversation[] = new Array(users.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= users.length) return;
      const u = users[i]!;
      // Spread over the nodes; a node that fails (died during the run) hands over to the next one.
      const errors: string[] = [];
      for (let n = 0; n < urls.length && !out[i]; n++) {
        const url = urls[(i + n) % urls.length]!;
        try {
          out[i] = await readConversation(url, u.token(), u.conversationId);
        } catch (err) {
          errors.push(`${url}: ${(err as Error).message}`);
        }
      }
      out[i] ??= { conversationId: u.conversationId, error: errors.join('; ') };
      onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, users.length) }, worker));
  return out;
}
