// What reaches the logs: a database error that quotes a rejected row (PostgreSQL's detail, repeated by
// MikroORM in its message) is logged without the row's values, which may be message text; tokens and
// contents logged by mistake are redacted.
import { Writable } from 'node:stream';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.ts';
import { GatewayError, ErrorCode } from '../../src/shared/errors.ts';
import { createTestDatabase } from '../helpers/db.ts';
import pg from 'pg';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { log: createLogger('info', {}, stream), lines };
}

/** A real PostgreSQL error whose detail quotes the rejected row. */
async function rowRejectedError(secret: string): Promise<Error> {
  const db = await createTestDatabase();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('create table notes (id int primary key, body text not null check (length(body) < 5))');
    await client.query('insert into notes values (1, $1)', [secret]);
    throw new Error('the insert should have been refused');
  } catch (err) {
    return err as Error;
  } finally {
    await client.end();
    await db.drop();
  }
}

describe('error logs', () => {
  it('keep the constraint and SQLSTATE of a refused row but not its values, also when wrapped', async () => {
    const secret = 'TOP SECRET MESSAGE TEXT';
    const driverError = await rowRejectedError(secret);
    expect(JSON.stringify({ ...driverError, message: driverError.message })).toContain(secret);
    // MikroORM's form of the same error: the detail repeated in the message.
    const ormError = new UniqueConstraintViolationException(
      Object.assign(new Error(`${driverError.message}\n - detail: ${(driverError as { detail?: string }).detail}`), driverError),
    );
    const wrapped = new GatewayError(ErrorCode.INTERNAL, 'internal error', { cause: ormError });

    const { log, lines } = capture();
    log.error({ err: driverError }, 'append failed');
    log.error({ err: ormError }, 'append failed');
    log.error({ err: wrapped }, 'append failed');
    await new Promise((resolve) => setImmediate(resolve));

    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line).not.toContain(secret);
      expect(line).toContain('notes_body_check');
    }
    expect(JSON.parse(lines[0]!).err).toMatchObject({ code: '23514', table: 'notes' });
  });

  it('redact a token or a content logged by mistake', async () => {
    const { log, lines } = capture();
    log.info({ token: 'eyJ.secret.token', message: { content: 'private words' } }, 'oops');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines[0]).not.toContain('eyJ.secret.token');
    expect(lines[0]).not.toContain('private words');
    expect(JSON.parse(lines[0]!)).toMatchObject({ token: '[redacted]', message: { content: '[redacted]' } });
  });
});
