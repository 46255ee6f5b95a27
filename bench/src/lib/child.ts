import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The compiled benchmark directory (bench/dist). */
export const DIST = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * CPU pinning for the delivery, stall and micro scenarios on a machine with at least two cores: the process
 * under test (an SDK client) gets the last core to itself and the ingest server gets core 0, so that decoding
 * on the ingest side never takes time from the SDK being measured, and every SDK gets the same single core (its
 * gzip threads included). Off when `taskset` is missing or BENCH_PIN=0. The overhead scenario is not pinned.
 */
export const PINNING: { enabled: boolean; measured: number; helpers: number } = (() => {
  const cores = os.cpus().length;
  let enabled = cores >= 2 && process.env.BENCH_PIN !== '0';
  if (enabled) {
    try {
      execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    } catch {
      enabled = false;
    }
  }
  return { enabled, measured: cores - 1, helpers: 0 };
})();

export type Role = 'measured' | 'helper';

/** Pins every thread of `pid` (threads started later inherit it) to the core of its role. */
export function pin(pid: number | undefined, role: Role): void {
  if (!PINNING.enabled || pid === undefined) return;
  const cpu = role === 'measured' ? PINNING.measured : PINNING.helpers;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
  } catch {
    // the process may already be gone; nothing to pin
  }
}

/** Messages between the runner and its child processes: always an object with a `type`. */
export interface Message {
  type: string;
  [key: string]: unknown;
}

/** A child process driven over IPC, with replies awaited by message type. */
export class Child {
  readonly process: ChildProcess;
  private readonly inbox: Message[] = [];
  private readonly waiters: Array<{
    type: string;
    resolve: (message: Message) => void;
    reject: (error: Error) => void;
  }> = [];
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exitPromise: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderr = '';

  constructor(
    script: string,
    args: readonly string[] = [],
    execArgv: readonly string[] = [],
    role: Role | undefined = undefined,
    env: Record<string, string> = {},
  ) {
    this.process = fork(join(DIST, script), [...args], {
      execArgv: [...execArgv],
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      env: { ...process.env, NODE_ENV: 'production', ...env },
    });
    if (role) pin(this.process.pid, role);
    this.process.stderr?.setEncoding('utf8');
    this.process.stderr?.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-8000);
      if (process.env.BENCH_VERBOSE) process.stderr.write(chunk);
    });
    this.process.on('message', (raw) => {
      const message = raw as Message;
      if (message.type === 'fatal') {
        this.failAll(new Error(`${script}: ${String(message.error)}`));
        return;
      }
      const index = this.waiters.findIndex((waiter) => waiter.type === message.type);
      if (index >= 0) {
        const [waiter] = this.waiters.splice(index, 1);
        waiter?.resolve(message);
      } else this.inbox.push(message);
    });
    this.exitPromise = new Promise((resolve) => {
      this.process.on('exit', (code, signal) => {
        this.exited = { code, signal };
        this.failAll(
          new Error(
            `${script} exited (code ${code}, signal ${signal}) while the runner waited for it${
              this.stderr ? `; stderr:\n${this.stderr}` : ''
            }`,
          ),
        );
        resolve({ code, signal });
      });
    });
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  /** Waits for the next message of `type` (or one already received). */
  waitFor(type: string, timeoutMs = 120_000): Promise<Message> {
    const index = this.inbox.findIndex((message) => message.type === type);
    if (index >= 0) return Promise.resolve(this.inbox.splice(index, 1)[0] as Message);
    if (this.exited) return Promise.reject(new Error(`child exited before sending "${type}"`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const at = this.waiters.findIndex((waiter) => waiter.resolve === done);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for "${type}"`));
      }, timeoutMs);
      const done = (message: Message) => {
        clearTimeout(timer);
        resolve(message);
      };
      this.waiters.push({
        type,
        resolve: done,
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  /** Sends a command and waits for the reply of type `replyType`. */
  request(message: Message, replyType: string, timeoutMs?: number): Promise<Message> {
    const reply = this.waitFor(replyType, timeoutMs);
    this.process.send(message);
    return reply;
  }

  send(message: Message): void {
    if (!this.exited) this.process.send(message);
  }

  /** Waits for the process to end; kills it (by its own pid) after `timeoutMs`. */
  async exit(timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.exited) return this.exited;
    const timer = setTimeout(() => this.kill(), timeoutMs);
    try {
      return await this.exitPromise;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    if (!this.exited) this.process.kill('SIGKILL');
  }

  lastStderr(): string {
    return this.stderr;
  }

  private failAll(error: Error): void {
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}

/** In a child: sends a message to the runner. */
export function reply(message: Message): void {
  process.send?.(message);
}

/** In a child: reports an uncaught failure to the runner and exits non-zero. */
export function installFatalHandlers(): void {
  const fatal = (error: unknown) => {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(`${text}\n`);
    try {
      process.send?.({ type: 'fatal', error: text }, () => process.exit(1));
    } catch {
      process.exit(1);
    }
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
}

/** In a child: handles runner commands by type. Replies are the handler's return value. */
export function onCommand(
  handler: (message: Message) => Promise<Message | undefined> | Message | undefined,
): void {
  process.on('message', (raw) => {
    const message = raw as Message;
    Promise.resolve(handler(message)).then(
      (answer) => {
        if (answer) reply(answer);
      },
      (error: unknown) =>
        reply({ type: 'fatal', error: error instanceof Error ? error.stack : String(error) }),
    );
  });
}

/** Peak resident set size of this process so far, in bytes (the kernel's high-water mark). */
export function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}
