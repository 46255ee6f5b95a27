import type { OutgoingMessage } from '@idstitch/core';
import type { RecordOrigin, RecordSource, SourceRecords } from './source.js';

function insertIdOf(message: OutgoingMessage): string | undefined {
  if (message.kind !== 'event') return undefined;
  const id = (message.payload.properties as Record<string, unknown>).$insert_id;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

function timeOf(message: OutgoingMessage): number | undefined {
  if (message.kind !== 'event') return undefined;
  const time = (message.payload.properties as Record<string, unknown>).time;
  return typeof time === 'number' && Number.isFinite(time) ? time : undefined;
}

function problemText(label: string, error: unknown): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  if (code === 'ENOENT') return `${label}: nothing there yet.`;
  return `${label}: cannot be read (${error instanceof Error ? error.message : code || String(error)}).`;
}

/**
 * Merges what several sources read into one sequence: each source's own order is kept, and the sources
 * are interleaved by event time (a message without a time goes with the one before it). An event found in
 * more than one source (the same `$insert_id`, as Mixpanel deduplicates) is shown once: it is pending when
 * any source still holds it for delivery.
 */
export function mergeRecords(parts: readonly { label: string; records: SourceRecords }[]): SourceRecords {
  const merged: SourceRecords = { messages: [], lineNumbers: [], unreadable: [], origins: [], notices: [] };
  const cursors = parts.map(() => 0);
  const lastTime = parts.map(() => Number.NEGATIVE_INFINITY);
  const byInsertId = new Map<string, RecordOrigin>();
  for (;;) {
    let pick = -1;
    let pickTime = Number.POSITIVE_INFINITY;
    parts.forEach((part, i) => {
      const message = part.records.messages[cursors[i] as number];
      if (message === undefined) return;
      const time = timeOf(message) ?? (lastTime[i] as number);
      if (pick === -1 || time < pickTime) {
        pick = i;
        pickTime = time;
      }
    });
    if (pick === -1) break;
    const { label, records } = parts[pick] as (typeof parts)[number];
    const at = cursors[pick] as number;
    cursors[pick] = at + 1;
    lastTime[pick] = pickTime;
    const message = records.messages[at] as OutgoingMessage;
    const origin: RecordOrigin = records.origins?.[at] ?? { sources: [label], pending: null };
    const insertId = insertIdOf(message);
    const seen = insertId === undefined ? undefined : byInsertId.get(insertId);
    if (seen !== undefined) {
      for (const source of origin.sources) if (!seen.sources.includes(source)) seen.sources.push(source);
      seen.pending ??= origin.pending;
      continue;
    }
    const copy: RecordOrigin = { sources: [...origin.sources], pending: origin.pending };
    if (insertId !== undefined) byInsertId.set(insertId, copy);
    merged.messages.push(message);
    merged.lineNumbers.push(records.lineNumbers[at] ?? 0);
    merged.origins?.push(copy);
  }
  for (const { label, records } of parts) {
    merged.unreadable.push(
      ...records.unreadable.map((line) => ({ ...line, reason: `${label}: ${line.reason}` })),
    );
    merged.notices?.push(...(records.notices ?? []));
  }
  return merged;
}

/**
 * Shows several sources as one (e.g. a LocalSink file and the spool of the same app). A source that cannot
 * be read is named in the page's notices while the others are shown; only when none can be read does the
 * read fail.
 */
export function mergeSources(sources: readonly RecordSource[]): RecordSource {
  if (sources.length === 1) return sources[0] as RecordSource;
  const mode = sources.find((source) => source.mode !== undefined)?.mode;
  return {
    label: sources.map((source) => source.label).join(' + '),
    ...(mode === undefined ? {} : { mode }),
    async read() {
      const results = await Promise.allSettled(sources.map((source) => source.read()));
      const parts: { label: string; records: SourceRecords }[] = [];
      const problems: string[] = [];
      results.forEach((result, i) => {
        const label = (sources[i] as RecordSource).label;
        if (result.status === 'fulfilled') parts.push({ label, records: result.value });
        else problems.push(problemText(label, result.reason));
      });
      if (parts.length === 0) throw (results[0] as PromiseRejectedResult).reason;
      const merged = mergeRecords(parts);
      merged.notices = [...problems, ...(merged.notices ?? [])];
      return merged;
    },
    watch(onChange) {
      const stops = sources.map((source) => source.watch(onChange));
      return () => {
        for (const stop of stops) stop();
      };
    },
    async close() {
      await Promise.all(sources.map((source) => source.close?.()));
    },
  };
}
