/** What every part of the store benchmark works with, handed to each explicitly. */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Gateway } from '../../src/gateway.ts';
import type { Cleanup } from '../lib/cleanup.ts';
import type { StoreSettings } from './options.ts';
import type { StoreReport } from './report.ts';

export interface RunIds {
  /** 8 hex digits; also the first 8 hex digits of the pgbench conversations' uuids. */
  runId: string;
  startedAt: Date;
  /** The start time as it appears in the database and report names, e.g. 20261206-040758. */
  stamp: string;
  /** Every scratch user's id starts with it, so the rows of a run on a shared database can be removed. */
  userPrefix: string;
}

export function newRunIds(startedAt = new Date()): RunIds {
  const runId = randomBytes(4).toString('hex');
  const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return { runId, startedAt, stamp, userPrefix: `bench-${runId}-` };
}

export interface StoreContext {
  settings: StoreSettings;
  ids: RunIds;
  databaseUrl: string;
  gateway: Gateway;
  /** One bare connection: fills, checks, plans and the history floor. */
  sql: pg.Client;
  /** Scratch files (the pgbench script); removed at the end. */
  tmp: string;
  /** Figures and errors land here as the phases run. */
  report: StoreReport;
  /** Where a phase registers what it starts (pgbench), so an interruption stops it. */
  cleanup: Cleanup;
}

export async function query<R extends pg.QueryResultRow = Record<string, unknown>>(client: pg.Client, sql: string, params: unknown[] = []) {
  return (await client.query<R>(sql, params)).rows;
}
