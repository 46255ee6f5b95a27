import { closeSync, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { IdstitchError, IdstitchOptionsError } from '../errors.js';
import type { DropReason, OutgoingMessage, Sink } from '../messages/types.js';
import type { IdMergeMode } from '../options.js';
import type { NdjsonReadResult } from './ndjson.js';
import { readNdjsonFile } from './ndjson.js';

/** Where LocalSink writes when no `path` is given, relative to the working directory. */
export const DEFAULT_LOCAL_PATH = '.idstitch/events.ndjson';

export interface LocalSinkOptions {
  /**
   * The NDJSON file to append to; relative paths resolve against the working directory at construction.
   * The folder is created. Default `.idstitch/events.ndjson`.
   */
  path?: string;
  /**
   * The ID Merge API the file is resolved with (by `@idstitch/inspector`); match your Mixpanel project's
   * (Project Settings → Identity Merge). Default `'simplified'`.
   */
  mode?: IdMergeMode;
  /**
   * Most messages held in memory while the disk catches up; further writes are dropped and counted as
   * `queue_overflow` until it drains. Default 10 000.
   */
  maxQueue?: number;
  /** Told about appends that failed after a retry and about messages lost at close. Default: `console.warn`. */
  onError?: (error: IdstitchError) => void;
}

/** Counters of what a LocalSink did with the messages it was given. */
export interface LocalSinkStats {
  /** Messages appended to the file. */
  written: number;
  /** Messages accepted but not yet appended. */
  pending: number;
  dropped: Partial<Record<DropReason, number>>;
}

type Serializer = <T>(key: string, task: () => Promise<T>) => Promise<T>;

/**
 * One append queue per file for the whole process, kept in a global slot: two sinks on the same file (a hot
 * reload, or the CJS and ESM copies of this package) must not interleave their appends.
 */
function fileQueue(): Serializer {
  const slot = Symbol.for('idstitch.localSink.fileQueues');
  const holder = globalThis as unknown as Record<symbol, Map<string, Promise<unknown>> | undefined>;
  let tails = holder[slot];
  if (tails === undefined) holder[slot] = tails = new Map();
  const queues = tails;
  return <T>(key: string, task: () => Promise<T>): Promise<T> => {
    const previous = queues.get(key) ?? Promise.resolve();
    const run = previous.then(task, task);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    queues.set(key, tail);
    void tail.then(() => {
      if (queues.get(key) === tail) queues.delete(key);
    });
    return run;
  };
}

function errorCode(error: unknown): string {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : String(error);
}

/**
 * Opens the file for appending (creating it and its folder) so an unwritable path fails at start-up, and
 * reports whether the file ends mid-line: after a crash mid-write, the next append must start on a new line or
 * it would be glued to the truncated one and be lost with it.
 */
function prepareFile(path: string): { endsMidLine: boolean } {
  try {
    mkdirSync(dirname(path), { recursive: true });
    const fd = openSync(path, 'a+');
    try {
      const size = fstatSync(fd).size;
      if (size === 0) return { endsMidLine: false };
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, size - 1);
      return { endsMidLine: last[0] !== 0x0a };
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    throw new IdstitchOptionsError(
      'path',
      `points at ${path}, which cannot be written (${errorCode(error)})`,
      'Pass a file in a folder the process can write to, e.g. `new LocalSink({ path: ".idstitch/events.ndjson" })`',
    );
  }
}

/**
 * The embedded default sink: appends every message (events, profile updates, group updates) as one line of
 * JSON to a local file, so identity can be seen and QA'd without a Mixpanel project. `@idstitch/inspector`
 * (`idstitch report`, `idstitch inspect`) resolves the file's contents the way Mixpanel's ID Merge would.
 *
 * `write` never blocks and never throws: lines are buffered and appended in order by one background drain per
 * file. Appending means restarts add to the log; a line cut short by a crash costs only that line.
 */
export class LocalSink implements Sink {
  /** Absolute path of the log file. */
  readonly path: string;
  readonly mode: IdMergeMode;
  private readonly maxQueue: number;
  private readonly onError: (error: IdstitchError) => void;
  private readonly serialize = fileQueue();
  private pending: string[] = [];
  private draining: Promise<void> | undefined;
  private endsMidLine: boolean;
  private closed = false;
  private closing: Promise<void> | undefined;
  private written = 0;
  private readonly dropped: Partial<Record<DropReason, number>> = {};

  /** @throws IdstitchOptionsError when an option is invalid or the path cannot be written. */
  constructor(options: LocalSinkOptions = {}) {
    const { path = DEFAULT_LOCAL_PATH, mode = 'simplified', maxQueue = 10_000, onError } = options;
    if (typeof path !== 'string' || path.trim() === '') {
      throw new IdstitchOptionsError(
        'path',
        'must be a non-empty file path',
        `Omit it to use ${DEFAULT_LOCAL_PATH}`,
      );
    }
    if (mode !== 'simplified' && mode !== 'original') {
      throw new IdstitchOptionsError(
        'mode',
        `must be 'simplified' or 'original', got ${String(mode)}`,
        "Use your Mixpanel project's ID Merge API (Project Settings → Identity Merge)",
      );
    }
    if (!Number.isInteger(maxQueue) || maxQueue < 1) {
      throw new IdstitchOptionsError(
        'maxQueue',
        `must be a positive integer, got ${String(maxQueue)}`,
        'Omit it to use 10000',
      );
    }
    this.path = resolve(path);
    this.mode = mode;
    this.maxQueue = maxQueue;
    this.onError = onError ?? ((error) => console.warn(error.message));
    this.endsMidLine = prepareFile(this.path).endsMidLine;
  }

  /** Queues one message for appending. Returns at once; never throws. */
  write(message: OutgoingMessage): void {
    if (this.closed) return this.recordDrop('after_close');
    let line: string | undefined;
    try {
      line = JSON.stringify(message);
    } catch (cause) {
      // A BigInt or a cycle slipped past sanitising; losing one message beats breaking the request.
      this.notify('invalid_message', 'a message could not be serialised to JSON and was dropped', cause);
    }
    if (line === undefined) return this.recordDrop('invalid');
    if (this.pending.length >= this.maxQueue) return this.recordDrop('queue_overflow');
    this.pending.push(line);
    this.draining ??= this.drain();
  }

  recordDrop(reason: DropReason, count = 1): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + count;
  }

  /** What happened to the messages so far. */
  get stats(): LocalSinkStats {
    return { written: this.written, pending: this.pending.length, dropped: { ...this.dropped } };
  }

  /** Resolves once every message written before the call is in the file (or reported as failed). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /**
   * Stops accepting messages and flushes. Messages still queued after `timeoutMs` are dropped, counted as
   * `shutdown_timeout` and reported. Calling it again returns the same promise.
   */
  close(timeoutMs = 5_000): Promise<void> {
    this.closed = true;
    this.closing ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((done) => {
        timer = setTimeout(() => done('timeout'), timeoutMs);
      });
      const outcome = await Promise.race([this.flush(), timedOut]);
      clearTimeout(timer);
      if (outcome === 'timeout' && this.pending.length > 0) {
        const lost = this.pending.length;
        this.pending = [];
        this.recordDrop('shutdown_timeout', lost);
        this.notify(
          'shutdown_timeout',
          `${lost} messages were not appended to ${this.path} before close timed out`,
        );
      }
    })();
    return this.closing;
  }

  /** Flushes, then reads back every message in the file (from earlier runs too). */
  async read(): Promise<NdjsonReadResult> {
    await this.flush();
    return readNdjsonFile(this.path);
  }

  private async drain(): Promise<void> {
    // Let the rest of the current tick's writes join the first batch; write() has returned by now.
    await Promise.resolve();
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        const chunk = `${this.endsMidLine ? '\n' : ''}${batch.join('\n')}\n`;
        if (await this.serialize(this.path, () => this.append(chunk, batch.length))) this.endsMidLine = false;
      }
    } finally {
      this.draining = undefined;
    }
  }

  /** Appends one chunk, retrying once after recreating the folder (someone may have cleared `.idstitch`). */
  private async append(chunk: string, count: number): Promise<boolean> {
    try {
      await appendFile(this.path, chunk);
    } catch {
      try {
        await mkdir(dirname(this.path), { recursive: true });
        await appendFile(this.path, chunk);
      } catch (cause) {
        this.recordDrop('retries_exhausted', count);
        this.notify('store_failed', `could not append ${count} messages to ${this.path}`, cause);
        return false;
      }
    }
    this.written += count;
    return true;
  }

  private notify(
    code: 'store_failed' | 'invalid_message' | 'shutdown_timeout',
    message: string,
    cause?: unknown,
  ) {
    try {
      this.onError(new IdstitchError(code, message, { cause, details: { path: this.path } }));
    } catch {
      // A throwing hook must not turn a lost log line into a crashed request.
    }
  }
}
