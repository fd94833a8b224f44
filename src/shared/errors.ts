/** The one error vocabulary of the gateway, shared by socket acks and REST responses. */
export const ErrorCode = {
  VALIDATION: 'VALIDATION',
  NOT_FOUND: 'NOT_FOUND',
  RATE_LIMITED: 'RATE_LIMITED',
  UNAVAILABLE: 'UNAVAILABLE',
  UNAUTHORIZED: 'UNAUTHORIZED',
  TOKEN_EXPIRED: 'TOKEN_EXPIRED',
  FORBIDDEN: 'FORBIDDEN',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  TIMEOUT: 'TIMEOUT',
  TOO_MANY_CONNECTIONS: 'TOO_MANY_CONNECTIONS',
  UNSUPPORTED_PROTOCOL: 'UNSUPPORTED_PROTOCOL',
  INTERNAL: 'INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The error shape on the wire: socket acks carry it as `error`, REST bodies as `{ error }`. */
export interface WireError {
  code: ErrorCode;
  message: string;
  retryAfterMs?: number;
}

/** An error the gateway means to show its client; anything else becomes INTERNAL. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly retryAfterMs?: number;

  constructor(code: ErrorCode, message: string, options?: { retryAfterMs?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.retryAfterMs = options?.retryAfterMs;
  }

  toWire(): WireError {
    return this.retryAfterMs === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, retryAfterMs: this.retryAfterMs };
  }
}

export const notFound = (what: string) => new GatewayError(ErrorCode.NOT_FOUND, `${what} not found`);

/** A setting that stops the start: the entry prints its message and exits. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
