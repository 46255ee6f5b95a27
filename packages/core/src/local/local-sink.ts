import { closeSync, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
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
  /**
   * Told about appends that failed after a retry and about messages lost at close. A disk that keeps
   * failing is reported once when it starts, then at most once per `reportIntervalMs` with counts, and
   * once when appends work again. Default: `console.warn`.
   */
  onError?: (error: IdstitchError) => void;
  /** Least time between two reports of the same ongoing append failure. Default 30 000 ms. */
  reportIntervalMs?: number;
  /**
   * Test seam for disk faults: writes one chunk of whole lines with a single `write` and returns the
   * bytes written (fewer when the disk filled up mid-chunk). Default: `handle.write(chunk)`.
   */
  writeChunk?: (handle: FileHandle, chunk: Buffer) => Promise<number>;
}

/**
 * Lines are written in chunks of whole lines of at most this many bytes, each with one `write` to a file
 * opened with O_APPEND: Linux appends one `write` to a local file atomically, so lines of two processes
 * sharing the file never interleave (Node's `appendFile` splits large buffers into several writes).
 */
const CHUNK_BYTES = 64 * 1024;

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

function defaultWriteChunk(handle: FileHandle, chunk: Buffer): Promise<number> {
  return handle.write(chunk, 0, chunk.length).then(({ bytesWritten }) => bytesWritten);
}

/** Whether the file open in `handle` ends without a newline (a torn last line). */
async function endsMidLine(handle: FileHandle): Promise<boolean> {
  const { size } = await handle.stat();
  if (size === 0) return false;
  const last = Buffer.alloc(1);
  await handle.read(last, 0, 1, size - 1);
  return last[0] !== 0x0a;
}

function countNewlines(chunk: Buffer, end: number): number {
  let count = 0;
  for (let i = 0; i < end; i += 1) if (chunk[i] === 0x0a) count += 1;
  return count;
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
  /** Whether the file's tail must be checked before the next append (a failed write may have torn it). */
  private checkTail = false;
  private readonly reportIntervalMs: number;
  private readonly writeChunk: (handle: FileHandle, chunk: Buffer) => Promise<number>;
  /** An ongoing append failure: reported when it starts, then throttled, then when it ends. */
  private failure: { since: number; lastReport: number; appends: number; messages: number } | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private written = 0;
  private readonly dropped: Partial<Record<DropReason, number>> = {};

  /** @throws IdstitchOptionsError when an option is invalid or the path cannot be written. */
  constructor(options: LocalSinkOptions = {}) {
    const { path = DEFAULT_LOCAL_PATH, mode = 'simplified', maxQueue = 10_000, onError } = options;
    const { reportIntervalMs = 30_000, writeChunk = defaultWriteChunk } = options;
    if (!Number.isInteger(reportIntervalMs) || reportIntervalMs < 0) {
      throw new IdstitchOptionsError(
        'reportIntervalMs',
        `must be a non-negative integer, got ${String(reportIntervalMs)}`,
        'Omit it to use 30000',
      );
    }
    this.reportIntervalMs = reportIntervalMs;
    this.writeChunk = writeChunk;
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
    this.mode = mode;
    this.maxQueue = maxQueue;
    this.onError = onError ?? ((error) => console.warn(error.message));
    if (options.path !== undefined) {
      this.path = resolve(path);
      this.endsMidLine = prepareFile(this.path).endsMidLine;
      return;
    }
    // No path given: a read-only working directory (a container, a serverless bundle) must not stop the
    // app from starting. Record to the temporary folder instead, and say so.
    const wanted = resolve(path);
    try {
      this.path = wanted;
      this.endsMidLine = prepareFile(wanted).endsMidLine;
    } catch (error) {
      const fallback = join(tmpdir(), `idstitch-${process.getuid?.() ?? 'user'}`, 'events.ndjson');
      this.path = fallback;
      let endsMidLine = false;
      let where = `recording to ${fallback} instead`;
      try {
        endsMidLine = prepareFile(fallback).endsMidLine;
      } catch {
        where = `nor ${fallback}; messages are counted as dropped`;
      }
      this.endsMidLine = endsMidLine;
      const reason = error instanceof Error ? error.message : String(error);
      queueMicrotask(() =>
        this.notify(
          'store_failed',
          `LocalSink cannot write its default file ${wanted} (${reason.replace(/^idstitch: /, '')}); ${where}. ` +
            'Pass `new LocalSink({ path })` or a MixpanelSink to choose.',
        ),
      );
    }
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
        await this.serialize(this.path, () => this.append(batch));
      }
    } finally {
      this.draining = undefined;
    }
  }

  /**
   * Appends lines in chunks of whole lines, one `write` each (see {@link CHUNK_BYTES}), after making sure
   * the file does not end mid-line. Retries once after recreating the folder (someone may have cleared
   * `.idstitch`). A write cut short (a full disk) leaves a torn line; the next append starts on a new line.
   */
  private async append(lines: string[]): Promise<void> {
    let done = 0;
    for (let attempt = 1; attempt <= 2 && done < lines.length; attempt += 1) {
      let handle: FileHandle | undefined;
      try {
        if (attempt === 2) await mkdir(dirname(this.path), { recursive: true });
        handle = await open(this.path, 'a+');
        let newline = this.endsMidLine || (this.checkTail && (await endsMidLine(handle)));
        while (done < lines.length) {
          let count = 0;
          let bytes = newline ? 1 : 0;
          while (done + count < lines.length) {
            const size = Buffer.byteLength(lines[done + count] as string) + 1;
            if (count > 0 && bytes + size > CHUNK_BYTES) break;
            bytes += size;
            count += 1;
          }
          const text = `${newline ? '\n' : ''}${lines.slice(done, done + count).join('\n')}\n`;
          const chunk = Buffer.from(text);
          const written = await this.writeChunk(handle, chunk);
          if (written < chunk.length) {
            // Cut short: the lines wholly written count, the rest of the chunk is torn.
            const complete = countNewlines(chunk, written) - (newline && written > 0 ? 1 : 0);
            this.written += Math.max(0, complete);
            done += Math.max(0, complete);
            this.endsMidLine = written > 0 && chunk[written - 1] !== 0x0a;
            this.checkTail = true;
            throw Object.assign(new Error(`wrote ${written} of ${chunk.length} bytes (disk full?)`), {
              code: 'ENOSPC',
            });
          }
          this.written += count;
          done += count;
          newline = false;
          this.endsMidLine = false;
          this.checkTail = false;
        }
      } catch (cause) {
        // Unknown how much of the failed write landed: check the tail before the next append.
        this.checkTail = true;
        if (attempt === 2 || done >= lines.length) {
          const lost = lines.length - done;
          this.recordDrop('retries_exhausted', lost);
          this.failed(lost, cause);
          return;
        }
      } finally {
        await handle?.close().catch(() => {});
      }
    }
    this.recovered();
  }

  /** Reports an append failure: the first at once, then at most one summary per `reportIntervalMs`. */
  private failed(messages: number, cause: unknown): void {
    const now = Date.now();
    if (this.failure === undefined) {
      this.failure = { since: now, lastReport: now, appends: 1, messages };
      this.notify('store_failed', `could not append ${messages} messages to ${this.path}`, cause, {
        state: 'started',
      });
      return;
    }
    this.failure.appends += 1;
    this.failure.messages += messages;
    if (now - this.failure.lastReport < this.reportIntervalMs) return;
    this.failure.lastReport = now;
    this.notify(
      'store_failed',
      `appends to ${this.path} keep failing: ${this.failure.messages} messages in ${this.failure.appends} ` +
        `appends lost since ${new Date(this.failure.since).toISOString()}`,
      cause,
      { state: 'ongoing', appends: this.failure.appends, messages: this.failure.messages },
    );
  }

  private recovered(): void {
    if (this.failure === undefined) return;
    const { appends, messages, since } = this.failure;
    this.failure = undefined;
    this.notify(
      'store_failed',
      `appends to ${this.path} work again; ${messages} messages in ${appends} appends were lost since ` +
        new Date(since).toISOString(),
      undefined,
      { state: 'recovered', appends, messages },
    );
  }

  private notify(
    code: 'store_failed' | 'invalid_message' | 'shutdown_timeout',
    message: string,
    cause?: unknown,
    details: Record<string, unknown> = {},
  ) {
    try {
      this.onError(new IdstitchError(code, message, { cause, details: { path: this.path, ...details } }));
    } catch {
      // A throwing hook must not turn a lost log line into a crashed request.
    }
  }
}
