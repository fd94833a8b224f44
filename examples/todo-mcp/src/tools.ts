// The MCP server one request talks to. It is built per request for the user of that request's token, so
// no tool takes a user id as an argument and none can act for anyone else.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import pkg from '../package.json' with { type: 'json' };
import type { Logger } from './log.ts';
import { DESCRIPTION_MAX, TITLE_MAX, type Task, type TaskStore } from './tasks.ts';

export const TOOL_NAMES = ['add_task', 'list_tasks', 'complete_task', 'update_task', 'delete_task'] as const;

/** Answered for a task id that does not exist and for one that belongs to another user alike. */
export const TASK_NOT_FOUND = 'task not found';
/** A tool result goes into the model's context; an unbounded list could fill it. */
export const LIST_LIMIT = 200;
/** The largest id PostgreSQL's `integer` holds: a larger one would fail in the database, not validation. */
const MAX_TASK_ID = 2_147_483_647;

const TaskOut = z.object({
  id: z.number().int().min(1),
  title: z.string(),
  description: z.string().nullable(),
  completed: z.boolean(),
  created_at: z.string().describe('ISO 8601'),
  updated_at: z.string().describe('ISO 8601'),
});
export type TaskOut = z.infer<typeof TaskOut>;

const taskId = z.number().int().min(1).max(MAX_TASK_ID).describe('The id of the task, as returned by add_task or list_tasks.');
const title = z.string().trim().min(1).max(TITLE_MAX);
const description = z.string().trim().max(DESCRIPTION_MAX);

function toOut(task: Task): TaskOut {
  return {
    id: task.id,
    title: task.title,
    description: task.description,
    completed: task.completed,
    created_at: task.createdAt.toISOString(),
    updated_at: task.updatedAt.toISOString(),
  };
}

// The text repeats the structured content as JSON, as the MCP specification asks of tools that return
// structured content, for clients that pass only text to the model.
function ok(structuredContent: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(structuredContent) }], structuredContent };
}

function failure(text: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true };
}

function taskResult(task: Task | undefined): CallToolResult {
  return task ? ok({ task: toOut(task) }) : failure(TASK_NOT_FOUND);
}

const INSTRUCTIONS =
  "Tools for the signed-in user's own todo list. Use list_tasks to find a task's id before completing, " +
  'updating or deleting it; never guess ids.';

export function createTodoServer(tasks: TaskStore, userId: string, log: Logger): McpServer {
  const server = new McpServer({ name: pkg.name, version: pkg.version }, { instructions: INSTRUCTIONS });

  // What the SDK would do with a thrown error is put its message in the result; a database error's message
  // belongs in the log, not in the model's context.
  async function run(tool: string, fn: () => Promise<CallToolResult>): Promise<CallToolResult> {
    try {
      return await fn();
    } catch (err) {
      log.error('tool failed', { tool, userId, err });
      return failure('internal error; try again later');
    }
  }

  server.registerTool(
    'add_task',
    {
      title: 'Add a task',
      description: "Add a new task to the user's todo list. Returns the created task, with its id.",
      inputSchema: {
        title: title.describe(`What to do, in a few words (1 to ${TITLE_MAX} characters).`),
        description: description.optional().describe(`Optional details (up to ${DESCRIPTION_MAX} characters).`),
      },
      outputSchema: { task: TaskOut },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    async (args) => run('add_task', async () => taskResult(await tasks.add(userId, args))),
  );

  server.registerTool(
    'list_tasks',
    {
      title: 'List tasks',
      description:
        "List the user's tasks, oldest first. status: 'pending' for tasks not done yet, 'completed' for done " +
        `ones, 'all' (the default) for both. At most ${LIST_LIMIT} tasks; truncated is true when there are more.`,
      inputSchema: {
        status: z.enum(['all', 'pending', 'completed']).default('all').describe('Which tasks to list.'),
      },
      outputSchema: { tasks: z.array(TaskOut), truncated: z.boolean() },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ status }) =>
      run('list_tasks', async () => {
        const listed = await tasks.list(userId, status, LIST_LIMIT);
        return ok({ tasks: listed.tasks.map(toOut), truncated: listed.truncated });
      }),
  );

  server.registerTool(
    'complete_task',
    {
      title: 'Complete a task',
      description: "Mark one of the user's tasks as done. Returns the task. Completing a done task changes nothing.",
      inputSchema: { task_id: taskId },
      outputSchema: { task: TaskOut },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async ({ task_id }) => run('complete_task', async () => taskResult(await tasks.complete(userId, task_id))),
  );

  server.registerTool(
    'update_task',
    {
      title: 'Update a task',
      description:
        "Change the title and/or the description of one of the user's tasks; give at least one. " +
        'An empty description removes it. Returns the updated task.',
      inputSchema: {
        task_id: taskId,
        title: title.optional().describe(`The new title (1 to ${TITLE_MAX} characters).`),
        description: description.optional().describe(`The new description (up to ${DESCRIPTION_MAX} characters).`),
      },
      outputSchema: { task: TaskOut },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async ({ task_id, ...changes }) =>
      run('update_task', async () => {
        if (changes.title === undefined && changes.description === undefined) {
          return failure('nothing to update: give a title or a description');
        }
        return taskResult(await tasks.update(userId, task_id, changes));
      }),
  );

  server.registerTool(
    'delete_task',
    {
      title: 'Delete a task',
      description: "Delete one of the user's tasks for good. Returns the task as it was before deletion.",
      inputSchema: { task_id: taskId },
      outputSchema: { task: TaskOut },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async ({ task_id }) => run('delete_task', async () => taskResult(await tasks.remove(userId, task_id))),
  );

  return server;
}
