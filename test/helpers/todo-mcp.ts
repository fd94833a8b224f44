// The reference MCP server (examples/todo-mcp) as a real child process, started the way `npm start` starts it
// (`node src/main.ts` in its directory, on the tests' Node 24), on a free port, with its tasks table in a schema
// of a test database so that a test can read the rows themselves.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const exampleDir = fileURLToPath(new URL('../../examples/todo-mcp', import.meta.url));

export interface TodoMcpProcess {
  /** Its Streamable HTTP endpoint, for MCP_SERVERS. */
  url: string;
  child: ChildProcess;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

export function startTodoMcp(env: { MCP_TOKEN_SECRET: string; DATABASE_URL: string; DATABASE_SCHEMA: string; MCP_AUDIENCE?: string }) {
  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: exampleDir,
    // Only what is given: nothing of the shell's environment leaks in.
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise<TodoMcpProcess>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'listening' && typeof entry.port === 'number') {
          resolve({
            url: `http://127.0.0.1:${entry.port}/mcp`,
            child,
            async stop() {
              if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
              await exited;
            },
          });
        }
      }
    });
    void exited.then(() => reject(new Error(`todo-mcp exited before listening:\n${stdout}\n${stderr}`)));
  });
}
