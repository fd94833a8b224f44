/**
 * The load tester's options: defaults, the command-line parser (`npm run loadtest -- --help`) and the checks both
 * the CLI and `runLoad()` apply. A mistake here is a usage error (exit code 2), never a half-started run.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { z } from 'zod';

export type Transport = 'websocket' | 'polling';

/**
 * Where a user's tabs connect. `spread`: tab t of user u on urls[(u + t) % n], so a user's tabs sit on different
 * nodes (every broadcast crosses Redis). `affine`: every tab of user u on urls[u % n], as behind a balancer that
 * hashes on the SDK's affinity key (deploy/nginx).
 */
export type Placement = 'spread' | 'affine';

/**
 * What the verification judges. `receipts`: every tab received every acknowledged message live, exactly once.
 * `converged`: after the drain, every observer tab's SDK view equals what the gateway stores (what a user sees
 * once the SDK has repaired whatever a fault lost).
 */
export type VerifyMode = 'receipts' | 'converged';

export interface LoadOptions {
  /** Gateway base URLs; tab t of user u connects to urls[(u + t) % urls.length] (`spread`) or urls[u % urls.length] (`affine`). */
  urls: string[];
  placement: Placement;
  users: number;
  /** Tabs (sockets) per user. */
  tabs: number;
  /** Offered load, messages per second over all users, after the ramp. */
  rate: number;
  /** Seconds over which the offered rate grows linearly from 0 to `rate` (part of `durationS`). */
  rampS: number;
  /** Seconds of sending, ramp included. */
  durationS: number;
  /** Characters of content per message. */
  size: number;
  /** Expect an assistant reply to every message, wait for each reply's end, and measure it. */
  assistant: boolean;
  /** HS256 secret the tokens are minted with (the gateway's JWT_SECRET). */
  secret: string;
  issuer?: string;
  audience?: string;
  /** Lifetime of minted tokens; the SDK renews them on the open socket before they expire. */
  tokenTtlS: number;
  /** Users are `<userPrefix>-<n>`; fresh ids per run keep rate limits and data of runs apart. */
  userPrefix: string;
  runId: string;
  /** Where the JSON and HTML reports go; null writes none (library use). */
  reportDir: string | null;
  /** After the last send, how long to wait for outstanding acks, receipts and replies. */
  drainTimeoutS: number;
  transports: Transport[];
  /** Handshakes in flight at once while the tabs connect. */
  connectConcurrency: number;
  /** A tab that has not connected by then fails the setup. */
  connectTimeoutS: number;
  /** Parallel REST requests while reading the stored messages back. */
  verifyConcurrency: number;
  /** Read the stored messages back over REST and check them (off for servers without the REST API). */
  verifyStorage: boolean;
  /** Erase the test users (DELETE /api/me) and all their data after verifying. */
  cleanup: boolean;
  verify: VerifyMode;
  /** SDK tabs per user that follow the user's conversation beside the load (`converged` only; 0 otherwise). */
  observers: number;
  /** `converged`: after the drain, how long to wait for every observer tab to match what is stored. */
  convergeTimeoutS: number;
  /** No progress line. */
  quiet: boolean;
  /** Print the report as JSON instead of the table; write no HTML. */
  jsonOnly: boolean;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

export const DEFAULTS = {
  urls: ['http://127.0.0.1:3000'],
  placement: 'spread' as Placement,
  users: 200,
  tabs: 2,
  rate: 500,
  rampS: 5,
  durationS: 30,
  size: 64,
  assistant: false,
  tokenTtlS: 3600,
  reportDir: 'reports',
  drainTimeoutS: 15,
  transports: ['websocket'] as Transport[],
  connectConcurrency: 50,
  connectTimeoutS: 30,
  verifyConcurrency: 8,
  verifyStorage: true,
  cleanup: false,
  verify: 'receipts' as VerifyMode,
  convergeTimeoutS: 30,
  quiet: false,
  jsonOnly: false,
} satisfies Partial<LoadOptions>;

/** Observer tabs per user in `converged` mode unless told: with two nodes, one on each. */
export const DEFAULT_OBSERVERS = 2;

/** One process may hold at most this many descriptors on the machines this was written on (hard limit 20,000). */
const MAX_TABS_PER_PROCESS = 18_000;

const url = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//i.test(u), 'must be an http(s) URL')
  .transform((u) => u.replace(/\/+$/, ''));
const positiveInt = z.number().int().positive();

const Schema = z
  .object({
    urls: z.array(url).min(1),
    placement: z.enum(['spread', 'affine']),
    users: positiveInt,
    tabs: positiveInt.max(255),
    rate: z.number().positive(),
    rampS: z.number().min(0),
    durationS: z.number().positive(),
    size: positiveInt.max(1_000_000),
    assistant: z.boolean(),
    secret: z.string().min(1, 'a secret is required (--secret or JWT_SECRET) to mint tokens'),
    issuer: z.string().min(1).optional(),
    audience: z.string().min(1).optional(),
    tokenTtlS: positiveInt.min(60),
    userPrefix: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[\w.:@-]+$/, 'letters, digits and . _ : @ - only'),
    runId: z
      .string()
      .min(1)
      .max(40)
      .regex(/^[\w.-]+$/, 'letters, digits and . _ - only'),
    reportDir: z.string().min(1).nullable(),
    drainTimeoutS: z.number().min(0),
    transports: z.array(z.enum(['websocket', 'polling'])).min(1),
    connectConcurrency: positiveInt,
    connectTimeoutS: z.number().positive(),
    verifyConcurrency: positiveInt.max(64),
    verifyStorage: z.boolean(),
    cleanup: z.boolean(),
    verify: z.enum(['receipts', 'converged']),
    observers: z.number().int().min(0),
    convergeTimeoutS: z.number().min(0),
    quiet: z.boolean(),
    jsonOnly: z.boolean(),
  })
  .refine((o) => o.rampS <= o.durationS, { message: '--ramp cannot exceed --duration', path: ['rampS'] })
  .refine((o) => o.verify === 'converged' || o.observers === 0, {
    message: 'observer tabs are only judged with --verify converged',
    path: ['observers'],
  })
  .refine((o) => o.verify === 'receipts' || o.observers >= 1, {
    message: '--verify converged needs at least one observer tab per user',
    path: ['observers'],
  })
  .refine((o) => o.verify === 'receipts' || o.verifyStorage, {
    message: '--verify converged compares the tabs with storage: it cannot be combined with --skip-storage',
    path: ['verify'],
  })
  .refine((o) => o.tabs + o.observers <= 255, { message: '--tabs plus --observers cannot exceed 255', path: ['observers'] })
  .refine((o) => o.users * (o.tabs + o.observers) <= MAX_TABS_PER_PROCESS, {
    message: `users × (tabs + observers) is above ${MAX_TABS_PER_PROCESS}: one process cannot hold that many sockets here; run several load testers with different --user-prefix`,
    path: ['users'],
  });

/** A fresh run id: time-ordered, short, safe in user ids and file names. */
export function newRunId(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `${t}-${randomBytes(3).toString('hex')}`;
}

/** Fills in defaults and checks everything; throws UsageError with every problem listed. */
export function resolveOptions(input: Partial<LoadOptions> & { secret?: string }): LoadOptions {
  const runId = input.runId ?? newRunId();
  const merged = {
    ...DEFAULTS,
    ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
    runId,
    userPrefix: input.userPrefix ?? `lt-${runId.slice(-6)}`,
    secret: input.secret ?? '',
    observers: input.observers ?? (input.verify === 'converged' ? DEFAULT_OBSERVERS : 0),
  };
  const parsed = Schema.safeParse(merged);
  if (!parsed.success) {
    throw new UsageError(parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('\n'));
  }
  return parsed.data;
}

export const HELP = `Usage: npm run loadtest -- [options]

Open-loop load test of a chat gateway (one or more nodes): U users × T tabs, each user's tabs on different nodes (or on one),
messages offered at a fixed rate whatever the gateway answers. Measures connect, ack, cross-tab fan-out and
assistant latency (HDR histograms), then verifies that every acknowledged message reached every tab of its user
exactly once and is stored exactly once (or, with --verify converged, that every observer tab's view converged on
what is stored). Exit code: 0 verified, 1 loss/duplicate/mismatch/not converged, 2 usage or setup error.

Target
  --url URL              gateway node base URL; repeat or comma-separate for several nodes
                         (default http://127.0.0.1:3000)
  --secret S             HS256 secret to mint user tokens (the gateway's JWT_SECRET; default: $JWT_SECRET)
  --issuer ISS           iss claim, when the gateway sets JWT_ISSUER
  --audience AUD         aud claim, when the gateway sets JWT_AUDIENCE
  --transports LIST      websocket (default) or websocket,polling

Load
  --users N              users (default 200); each sends into one conversation of its own
  --tabs N               sockets per user (default 2); tab t of user u uses url (u + t) mod #urls
  --placement P          spread (default: as above, a user's tabs on different nodes) or affine (every tab of
                         user u on url u mod #urls, as behind a balancer hashing on the SDK's affinity key)
  --rate R               offered messages per second over all users (default 500)
  --ramp S               seconds to grow the rate linearly from 0 (default 5; part of --duration)
  --duration S           seconds of sending, ramp included (default 30)
  --size N               characters of content per message (default 64)
  --assistant            expect an assistant reply to every message and measure first delta and completion
                         (the gateway's ASSISTANT setting decides whether replies come)

Verification
  --verify MODE          receipts (default): every acked message reached every tab live, exactly once, and is
                         stored once; converged: after the drain, every observer tab's SDK view (messages and
                         conversation list) equals what is stored, and nothing acked was lost or stored twice —
                         the verdict of a fault drill, where live receipts are lost by design
  --observers N          converged: SDK tabs per user that follow its conversation beside the load (default 2;
                         observer o of user u uses url (u + o) mod #urls)
  --converge-timeout S   converged: how long to wait after the drain for every observer tab to match storage
                         (default 30)

Run
  --run-id ID            names the run, its reports and its clientMessageIds (default: time and a random suffix)
  --user-prefix P        user ids are P-0, P-1, … (default lt-<run id suffix>: fresh users every run)
  --drain-timeout S      after the last send, wait this long for acks, receipts and replies (default 15)
  --connect-concurrency N handshakes in flight during setup (default 50)
  --connect-timeout S    a tab not connected by then fails the setup (default 30)
  --token-ttl S          lifetime of minted tokens; the SDK renews them before expiry (default 3600)
  --verify-concurrency N REST requests in flight while reading the stored messages back (default 8)
  --skip-storage         do not read the stored messages back (for a transport-only server without the REST API;
                         live delivery is still verified)
  --cleanup              erase the test users and their data (DELETE /api/me) after verifying
  --report-dir DIR       where loadtest-<run id>.json and .html go (default reports/)
  --quiet                no live progress line
  --json-only            print the report as JSON instead of the table, and write no HTML
  -h, --help             this text

Environment
  JWT_SECRET             the default of --secret
  JWT_ISSUER             the default of --issuer
  JWT_AUDIENCE           the default of --audience

The gateway must allow the offered rate per user: start it with SEND_RATE_LIMIT above
rate / users × SEND_RATE_WINDOW_S (with headroom), else sends are refused with RATE_LIMITED (counted, not lost).
Every tab connects from this machine's address: start the gateway with HANDSHAKE_RATE_LIMIT above the number of
tabs (the default, 60 per 10 s, is meant for one client), or run the load from several machines.

Example (with JWT_SECRET exported as the gateway's)
  npm run loadtest -- --url http://127.0.0.1:3000,http://127.0.0.1:3001 --users 100 --rate 200 --duration 20

Fault drill: the same in converged mode; kill -9 a node mid-run, start it again on its port, read the verdict
  npm run loadtest -- --url http://127.0.0.1:3000,http://127.0.0.1:3001 --verify converged --users 20 --rate 50
`;

/** Parses `argv` (without node and the script); returns null when --help was asked for. */
export function parseCli(argv: string[], env: NodeJS.ProcessEnv = process.env): LoadOptions | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string', multiple: true },
        users: { type: 'string' },
        tabs: { type: 'string' },
        placement: { type: 'string' },
        rate: { type: 'string' },
        ramp: { type: 'string' },
        duration: { type: 'string' },
        size: { type: 'string' },
        assistant: { type: 'boolean' },
        secret: { type: 'string' },
        issuer: { type: 'string' },
        audience: { type: 'string' },
        'token-ttl': { type: 'string' },
        'user-prefix': { type: 'string' },
        'run-id': { type: 'string' },
        'report-dir': { type: 'string' },
        'drain-timeout': { type: 'string' },
        transports: { type: 'string' },
        'connect-concurrency': { type: 'string' },
        'connect-timeout': { type: 'string' },
        'verify-concurrency': { type: 'string' },
        'skip-storage': { type: 'boolean' },
        cleanup: { type: 'boolean' },
        verify: { type: 'string' },
        observers: { type: 'string' },
        'converge-timeout': { type: 'string' },
        quiet: { type: 'boolean' },
        'json-only': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return null;
  const num = (name: string, raw: string | undefined): number | undefined => {
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name}: "${raw}" is not a number`);
    return n;
  };
  // Durations may carry their unit, as people write them: `--duration 30s`.
  const seconds = (name: string, raw: string | undefined): number | undefined =>
    num(name, raw === undefined ? undefined : raw.trim().replace(/(?<=\d)s$/i, ''));
  const list = (raw: string[] | string | undefined) =>
    raw === undefined
      ? undefined
      : [raw]
          .flat()
          .flatMap((s) => s.split(','))
          .map((s) => s.trim())
          .filter(Boolean);
  return resolveOptions({
    urls: list(values.url),
    users: num('users', values.users),
    tabs: num('tabs', values.tabs),
    placement: values.placement as Placement | undefined,
    rate: num('rate', values.rate),
    rampS: seconds('ramp', values.ramp),
    durationS: seconds('duration', values.duration),
    size: num('size', values.size),
    assistant: values.assistant,
    secret: values.secret ?? (env.JWT_SECRET || undefined),
    issuer: values.issuer ?? (env.JWT_ISSUER || undefined),
    audience: values.audience ?? (env.JWT_AUDIENCE || undefined),
    tokenTtlS: seconds('token-ttl', values['token-ttl']),
    userPrefix: values['user-prefix'],
    runId: values['run-id'],
    reportDir: values['report-dir'],
    drainTimeoutS: seconds('drain-timeout', values['drain-timeout']),
    transports: list(values.transports) as Transport[] | undefined,
    connectConcurrency: num('connect-concurrency', values['connect-concurrency']),
    connectTimeoutS: seconds('connect-timeout', values['connect-timeout']),
    verifyConcurrency: num('verify-concurrency', values['verify-concurrency']),
    verifyStorage: values['skip-storage'] ? false : undefined,
    cleanup: values.cleanup,
    verify: values.verify as VerifyMode | undefined,
    observers: num('observers', values.observers),
    convergeTimeoutS: seconds('converge-timeout', values['converge-timeout']),
    quiet: values.quiet,
    jsonOnly: values['json-only'],
  });
}

/** The options as reports show them: everything but the secret. */
export function publicOptions(o: LoadOptions): Omit<LoadOptions, 'secret'> {
  const { secret: _secret, ...rest } = o;
  return rest;
}
