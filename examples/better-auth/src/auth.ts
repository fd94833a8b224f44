// Better Auth as the app's sign-in, with its JWT plugin: the part a team adds to its own Better Auth configuration
// so that the chat gateway accepts its users. The gateway is then configured with
//   JWT_JWKS_URL = <baseURL>/api/auth/jwks    JWT_ISSUER = <baseURL>    JWT_AUDIENCE = chat-gateway
// and the page gives the widget or the SDK `getToken: () => fetch('/api/auth/token')…`.
import { betterAuth } from 'better-auth';
import { jwt } from 'better-auth/plugins';
import { getMigrations } from 'better-auth/db/migration';
import { DatabaseSync } from 'node:sqlite';

export const CHAT_AUDIENCE = 'chat-gateway';

export interface AuthOptions {
  /** Where the app is served (`https://app.example.com`): Better Auth's baseURL, and the tokens' issuer. */
  baseURL: string;
  /** Better Auth's secret (BETTER_AUTH_SECRET): it encrypts the JWT plugin's private keys in the database. */
  secret: string;
  /** The SQLite file of the app's users, sessions and signing keys (`:memory:` for one that dies with the process). */
  databasePath: string;
}

export function createAuth(o: AuthOptions) {
  return betterAuth({
    baseURL: o.baseURL,
    secret: o.secret,
    // Node's built-in SQLite: nothing to compile or download. Any database Better Auth supports does the same.
    database: new DatabaseSync(o.databasePath),
    emailAndPassword: { enabled: true },
    plugins: [
      // Keys: Ed25519 (EdDSA), Better Auth's default, which the gateway accepts from a JWKS. /api/auth/token signs
      // one for the session's user; /api/auth/jwks publishes the public keys, and the gateway picks one by `kid`.
      jwt({
        jwt: {
          issuer: o.baseURL,
          audience: CHAT_AUDIENCE,
          // Short, as Better Auth's default: the SDK fetches a new token before this one expires.
          expirationTime: '15m',
          // The gateway needs only `sub` (the plugin sets it to the user's id), `exp`, `iss` and `aud`. By default
          // the plugin copies the whole user (email, name…) into every token; none of it is needed here.
          definePayload: () => ({}),
        },
      }),
    ],
    telemetry: { enabled: false },
  });
}

export type Auth = ReturnType<typeof createAuth>;

/** Creates Better Auth's tables (users, sessions, accounts, the JWT plugin's keys) when missing. */
export async function migrate(auth: Auth): Promise<void> {
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();
}
