/**
 * What a benchmark must undo however it ends: the databases it created and the processes it started. Steps run
 * once each, the last registered first (a node goes before the database it holds connections to), whether the run
 * ends normally, fails, or is stopped with Ctrl-C or SIGTERM.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export type CleanupStep = () => void | Promise<void>;

export class Cleanup {
  readonly #steps: { name: string; step: CleanupStep }[] = [];
  readonly #log: (line: string) => void;
  #running: Promise<void> | undefined;
  #done = false;

  constructor(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)) {
    this.#log = log;
  }

  /**
   * Registers a step; the function returned runs it now (for the normal path) and takes it off the list. A step
   * registered while the cleanup runs is run next; one registered after it finished runs at once: a process started
   * meanwhile must not outlive the run.
   */
  add(name: string, step: CleanupStep): () => Promise<void> {
    const entry = { name, step };
    if (this.#done) {
      void this.#run(entry);
      return async () => {};
    }
    this.#steps.push(entry);
    return async () => {
      const i = this.#steps.indexOf(entry);
      if (i < 0) return;
      this.#steps.splice(i, 1);
      await this.#run(entry);
    };
  }

  /** Whether the cleanup has begun: errors from work it cut short are its consequence, not news. */
  get started(): boolean {
    return this.#running !== undefined;
  }

  /** Runs every step still registered, last first. A failing step is reported and the others still run. */
  run(): Promise<void> {
    this.#running ??= (async () => {
      for (let entry = this.#steps.pop(); entry; entry = this.#steps.pop()) await this.#run(entry);
      this.#done = true;
    })();
    return this.#running;
  }

  async #run(entry: { name: string; step: CleanupStep }): Promise<void> {
    try {
      await entry.step();
    } catch (err) {
      this.#log(`cleanup: ${entry.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/**
 * Runs the cleanup on SIGINT and SIGTERM, then exits as a shell reports a death by that signal (130, 143); an error
 * nobody caught gets the same cleanup and exit code 1. Without this, Node dies on the signal at once and leaves the
 * children and the scratch database behind.
 */
export function cleanUpOnExit(cleanup: Cleanup, log: (line: string) => void): void {
  let exiting = false;
  const finish = (code: number) => {
    if (exiting) return;
    exiting = true;
    void cleanup.run().finally(() => process.exit(code));
  };
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(signal, () => {
      log(exiting ? `${signal}: still cleaning up` : `\n${signal}: cleaning up`);
      finish(code);
    });
  }
  const fail = (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    finish(1);
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
}

/**
 * Stops a child process: `ask` (e.g. an IPC message) or SIGTERM, then SIGKILL after `graceMs`, because a child
 * stuck in its own shutdown must not keep the run (and its database) alive.
 */
export async function stopChild(child: ChildProcess, { ask, graceMs = 5_000 }: { ask?: () => void; graceMs?: number } = {}): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  if (ask && child.connected) ask();
  else child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}
