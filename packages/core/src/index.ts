/**
 * The Node entry point, `@idstitch/core`: everything the web entry has, plus what needs Node's built-ins —
 * `LocalSink` (the embedded default sink when none is given) and its NDJSON reader, and a read-only view of a
 * delivery spool's directory (for the inspector).
 */

// Shadows the web entry's createIdstitch: on Node the default sink is LocalSink, not ConsoleSink.
export { createIdstitch } from './create.js';
export type { LocalSinkOptions, LocalSinkStats } from './local/local-sink.js';
export { DEFAULT_LOCAL_PATH, LocalSink } from './local/local-sink.js';
export type { NdjsonReadResult, UnreadableLine } from './local/ndjson.js';
export { parseNdjson, readNdjsonFile } from './local/ndjson.js';
export type { SpoolDirectoryView, SpoolPendingRecord, SpoolReadDamage } from './sinks/spool/reader.js';
export { readSpoolDirectory } from './sinks/spool/reader.js';
export * from './web.js';
