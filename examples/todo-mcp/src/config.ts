import { z } from 'zod';

/** HS256 keys shorter than the hash output are brute-forceable (RFC 7518 §3.2). */
export const MIN_SECRET_BYTES = 32;

export const USAGE = `todo-mcp: an MCP server (Streamable HTTP) with per-user todo tools.

Usage: npm start            (or: node src/main.ts)
       node src/main.ts --help

Every request to POST /mcp needs "Authorization: Bearer <jwt>": HS256, signed with
MCP_TOKEN_SECRET, iss "chat-gateway", aud MCP_AUDIENCE, sub = the user id, exp at
most 5 minutes ahead. GET /healthz answers without a token.

Environment:
  MCP_TOKEN_SECRET  required; the secret shared with the gateway, at least ${MIN_SECRET_BYTES} bytes
  MCP_AUDIENCE      the token's expected aud (default: todo)
  PORT              port to listen on (default: 4000; 0 picks a free one)
  HOST              address to listen on (default: 127.0.0.1)
  DATABASE_URL      PostgreSQL connection string; when unset, PGlite stores the data on disk
  DATABASE_SCHEMA   schema of the tasks table (default: public)
  PGLITE_DIR        PGlite's directory when DATABASE_URL is unset (default: ./data)
`;

const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65_535).default(4000),
  HOST: z.string().default('127.0.0.1'),
  MCP_TOKEN_SECRET: z.string({ error: 'is required' }),
  MCP_AUDIENCE: z.string().min(1).max(255).default('todo'),
  DATABASE_URL: z.string().optional(),
  // Interpolated into SQL as a quoted identifier, so only plain names are accepted.
  DATABASE_SCHEMA: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be a plain identifier (letters, digits, _)')
    .default('public'),
  PGLITE_DIR: z.string().default('./data'),
});

export interface TodoMcpConfig {
  port: number;
  host: string;
  token: {
    secret: string;
    /** The `aud` every token must carry: this server's name in the gateway's configuration. */
    audience: string;
  };
  database: { url: string; schema: string } | { pgliteDir: string; schema: string };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the environment once, at start-up; anything wrong stops the process with a message saying what. */
export function loadConfig(env: NodeJS.ProcessEnv): TodoMcpConfig {
  // Empty strings count as unset, as in most deployment tools.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid environment:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  const secretBytes = Buffer.byteLength(e.MCP_TOKEN_SECRET);
  if (secretBytes < MIN_SECRET_BYTES) {
    throw new ConfigError(`MCP_TOKEN_SECRET is ${secretBytes} bytes; at least ${MIN_SECRET_BYTES} are required`);
  }
  return {
    port: e.PORT,
    host: e.HOST,
    token: { secret: e.MCP_TOKEN_SECRET, audience: e.MCP_AUDIENCE },
    database: e.DATABASE_URL ? { url: e.DATABASE_URL, schema: e.DATABASE_SCHEMA } : { pgliteDir: e.PGLITE_DIR, schema: e.DATABASE_SCHEMA },
  };
}
