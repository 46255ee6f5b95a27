import { type FSWatcher, unwatchFile, watch, watchFile } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { IdMergeMode, LocalSink, NdjsonReadResult } from '@idstitch/core';
import { DEFAULT_LOCAL_PATH, readNdjsonFile } from '@idstitch/core';

/**
 * Where the inspector reads recorded messages from. Implemented for LocalSink's file
 * ({@link localFileSource}); a disk spool or a Redis outbox can implement the same three members.
 */
export interface RecordSource {
  /** Shown in the page header, e.g. the file's path. */
  readonly label: string;
  /** The ID Merge API the records were made for, when the source knows it (a LocalSink does). */
  readonly mode?: IdMergeMode;
  /** Every message recorded so far. Rejects when the records cannot be read (ENOENT: none yet). */
  read(): Promise<NdjsonReadResult>;
  /** Calls `onChange` when messages may have been added; returns a function that stops watching. */
  watch(onChange: () => void): () => void;
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
    watch(onChange) {
      let watcher: FSWatcher | undefined;
      try {
        watcher = watch(dirname(file), { persistent: false }, (_event, name) => {
          if (name === null || name === basename(file)) onChange();
        });
        watcher.on('error', () => {
          // The folder went away; the page keeps its last snapshot and says so on the next read.
          watcher?.close();
          onChange();
        });
        return () => watcher?.close();
      } catch {
        const listener = () => onChange();
        watchFile(file, { interval, persistent: false }, listener);
        return () => unwatchFile(file, listener);
      }
    },
  };
}

/** The file a LocalSink writes, resolved with the sink's own ID Merge mode. */
export function localSinkSource(sink: Pick<LocalSink, 'path' | 'mode'>): RecordSource {
  return localFileSource(sink.path, { mode: sink.mode });
}
