// An example of examples/ started as its README says (`npm start` runs `node <start script>` in its folder): on
// vitest's own Node 24, with only the environment given here, until it prints its `ready:` line.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface RunningExample {
  /** The `name: url` lines it printed before `ready:` (`app`, `page`, `gateway`). */
  urls: Record<string, string>;
  child: ChildProcess;
  /** SIGTERM (it stops the gateway it started too), then its exit code; SIGKILL if it has not exited in 10 s. */
  stop(): Promise<number | null>;
}

const running = new Set<ChildProcess>();

/** SIGKILL to the example and the gateway it started (its own process group), so that neither outlives a failure. */
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Kills what a failed test left running (afterAll). */
export function killExamples(): void {
  for (const child of running) killGroup(child);
}

export function startExample(name: string, script: string, env: Record<string, string>, timeoutMs = 60_000): Promise<RunningExample> {
  const cwd = fileURLToPath(new URL(`../../examples/${name}/`, import.meta.url));
  const child = spawn(process.execPath, [script], {
    cwd,
    // Node 24 first on PATH, as npm scripts have it; nothing else of the shell's environment.
    env: { PATH: `${process.execPath.replace(/\/node$/, '')}:${process.env.PATH}`, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own, with the gateway it starts: killGroup reaches both.
    detached: true,
  });
  running.add(child);
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      killGroup(child);
      reject(new Error(`${name} did not get ready in ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const urls: Record<string, string> = {};
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      output += d;
      for (const match of d.matchAll(/^(\w+): (http\S+)$/gm)) urls[match[1]!] = match[2]!;
      if (!/^ready:/m.test(output)) return;
      clearTimeout(timer);
      resolve({
        urls,
        child,
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          const kill = setTimeout(() => killGroup(child), 10_000);
          const code = await exited;
          clearTimeout(kill);
          return code;
        },
      });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it was ready:\n${output}`));
    });
  });
}
