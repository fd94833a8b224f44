// The tasks table. Every statement has `user_id = $1`: a task of another user is indistinguishable from a
// task that does not exist, so no tool can read, change or even confirm someone else's task.
import type { Sql } from './database.ts';

export const TITLE_MAX = 200;
export const DESCRIPTION_MAX = 2000;

export interface Task {
  id: number;
  title: string;
  description: string | null;
  completed: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export type TaskStatus = 'all' | 'pending' | 'completed';

interface TaskRow {
  id: number;
  title: string;
  description: string | null;
  completed: boolean;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'id, title, description, completed, created_at, updated_at';

function toTask(row: TaskRow): Task {
  return {
    id: row.id,
    title: row.title,
    description: row.description,
    completed: row.completed,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export class TaskStore {
  readonly #sql: Sql;
  readonly #table: string;

  constructor(sql: Sql, schema: string) {
    this.#sql = sql;
    this.#table = `"${schema}".tasks`;
  }

  async add(userId: string, input: { title: string; description?: string | null }): Promise<Task> {
    const rows = await this.#sql.query<TaskRow>(
      `insert into ${this.#table} (user_id, title, description) values ($1, $2, $3) returning ${COLUMNS}`,
      [userId, input.title, input.description || null],
    );
    return toTask(rows[0]!);
  }

  /** Oldest first, at most `limit` tasks; `truncated` says whether more exist. */
  async list(userId: string, status: TaskStatus, limit: number): Promise<{ tasks: Task[]; truncated: boolean }> {
    const filter = status === 'all' ? '' : `and completed = ${status === 'completed'}`;
    const rows = await this.#sql.query<TaskRow>(`select ${COLUMNS} from ${this.#table} where user_id = $1 ${filter} order by id limit $2`, [
      userId,
      limit + 1,
    ]);
    return { tasks: rows.slice(0, limit).map(toTask), truncated: rows.length > limit };
  }

  /** Idempotent: completing a completed task changes nothing, not even `updatedAt`. */
  async complete(userId: string, id: number): Promise<Task | undefined> {
    const rows = await this.#sql.query<TaskRow>(
      `update ${this.#table}
          set completed = true, updated_at = case when completed then updated_at else now() end
        where user_id = $1 and id = $2
        returning ${COLUMNS}`,
      [userId, id],
    );
    return rows[0] && toTask(rows[0]);
  }

  /** Changes only the fields given; an empty description removes it. */
  async update(userId: string, id: number, changes: { title?: string; description?: string }): Promise<Task | undefined> {
    const rows = await this.#sql.query<TaskRow>(
      `update ${this.#table}
          set title = coalesce($3::varchar, title),
              description = case when $4::boolean then $5::varchar else description end,
              updated_at = now()
        where user_id = $1 and id = $2
        returning ${COLUMNS}`,
      [userId, id, changes.title ?? null, changes.description !== undefined, changes.description || null],
    );
    return rows[0] && toTask(rows[0]);
  }

  /** Returns the task as it was, so the caller can say what was deleted. */
  async remove(userId: string, id: number): Promise<Task | undefined> {
    const rows = await this.#sql.query<TaskRow>(`delete from ${this.#table} where user_id = $1 and id = $2 returning ${COLUMNS}`, [
      userId,
      id,
    ]);
    return rows[0] && toTask(rows[0]);
  }
}
