import { type FSWatcher, unwatchFile, watch, watchFile } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { IdMergeMode, LocalSink, NdjsonReadResult } from '@idstitch/core';
import { DEFAULT_LOCAL_PATH, readNdjsonFile } from '@idstitch/core';

/** Where a message was found, and whether it still waits for delivery. */
export interface RecordOrigin {
  /** Labels of the sources that hold it (more than one when sources are merged and agree on `$insert_id`). */
  sources: string[];
  /**
   * Where it waits to be delivered to Mixpanel (e.g. `spool …/0000000002.seg #5`, `Redis outbox idstitch:outbox
   * 1712345678901-0`), or `null`: recorded only (LocalSink writes what it would have sent).
   */
  pending: string | null;
}

/** What a {@link RecordSource} read: messages in order, plus where each came from. */
export interface SourceRecords extends NdjsonReadResult {
  /** Parallel to `messages`. Absent: every message is recorded, none pending (a LocalSink file). */
  origins?: RecordOrigin[];
  /** What the page should say about the source: damage skipped, what it cannot see. */
  notices?: string[];
}

/**
 * Where the inspector reads recorded messages from: LocalSink's file ({@link localFileSource}), a delivery
 * spool ({@link spoolSource}), a Redis outbox ({@link redisOutboxSource}), or several ({@link mergeSources}).
 */
export interface RecordSource {
  /** Shown in the page header, e.g. the file's path. */
  readonly label: string;
  /** The ID Merge API the records were made for, when the source knows it (a LocalSink does). */
  readonly mode?: IdMergeMode;
  /** Every message held so far. Rejects when the records cannot be read (ENOENT: none yet). */
  read(): Promise<SourceRecords>;
  /** Calls `onChange` when messages may have been added; returns a function that stops watching. */
  watch(onChange: () => void): () => void;
  /** Releases what the source holds open (a Redis connection). */
  close?(): Promise<void>;
}

/**
 * Watches a path: its folder is watched (so the path may appear later, or be replaced); when the folder does
 * not exist yet the path is polled instead. `onChange` may be called for changes that add nothing.
 */
export function watchPath(
  path: string,
  onChange: () => void,
  interval: number,
  wholeFolder = false,
): () => void {
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(wholeFolder ? path : dirname(path), { persistent: false }, (_event, name) => {
      if (wholeFolder || name === null || name === basename(path)) onChange();
    });
    watcher.on('error', () => {
      // The folder went away; the page keeps its last snapshot and says so on the next read.
      watcher?.close();
      onChange();
    });
    return () => watcher?.close();
  } catch {
    const listener = () => onChange();
    watchFile(path, { interval, persistent: false }, listener);
    return () => unwatchFile(path, listener);
  }
}

export interface LocalFileSourceOptions {
  /** The ID Merge API to resolve with. Default: guessed from the messages. */
  mode?: IdMergeMode;
  /** How often to look at the file when the folder cannot be watched, in ms. Default 500. */
  pollIntervalMs?: number;
}

/**
 * Reads the NDJSON file a LocalSink appends to, and watches it: the folder is watched (so the file may
 * appear later, or be replaced); when the folder does not exist yet the file is polled instead.
 */
export function localFileSource(
  path: string = DEFAULT_LOCAL_PATH,
  options: LocalFileSourceOptions = {},
): RecordSource {
  const file = resolve(path);
  const interval = options.pollIntervalMs ?? 500;
  return {
    label: file,
    ...(options.mode === undefined ? {} : { mode: options.mode }),
    read: () => readNdjsonFile(file),
    watch: (onChange) => watchPath(file, onChange, interval),
  };
}

/** The file a LocalSink writes, resolved with the sink's own ID Merge mode. */
export function localSinkSource(sink: Pick<LocalSink, 'path' | 'mode'>): RecordSource {
  return localFileSource(sink.path, { mode: sink.mode });
}
