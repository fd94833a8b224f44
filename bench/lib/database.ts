/** The scratch database of a bench run: created on the machine's PostgreSQL, dropped by the run's cleanup however it ends. */
import pg from 'pg';
import type { Cleanup } from './cleanup.ts';

/** Creates `dbName` and registers its drop (WITH (FORCE): a killed node's connections must not block it). */
export async function createDatabase(adminUrl: string, dbName: string, cleanup: Cleanup): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${dbName}`);
  } finally {
    await admin.end();
  }
  cleanup.add(`drop database ${dbName}`, async () => {
    const dropper = new pg.Client({ connectionString: adminUrl });
    await dropper.connect();
    try {
      await dropper.query(`drop database if exists ${dbName} with (force)`);
    } finally {
      await dropper.end();
    }
  });
  return adminUrl.replace(/\/[^/]*$/, `/${dbName}`);
}
