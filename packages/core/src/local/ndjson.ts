import { readFile } from 'node:fs/promises';
import type { OutgoingMessage } from '../messages/types.js';

/** A line of an NDJSON log that did not hold a message. */
export interface UnreadableLine {
  /** 1-based line number in the file. */
  line: number;
  reason: string;
  /** The start of the line, for the report. */
  excerpt: string;
}

/** Messages read back from an NDJSON log. */
export interface NdjsonReadResult {
  messages: OutgoingMessage[];
  /** 1-based file line of each message, parallel to `messages`. */
  lineNumbers: number[];
  unreadable: UnreadableLine[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Accepts the `{kind, payload}` lines LocalSink writes, and bare Mixpanel payloads (an `/import` event, an
 * `/engage` or `/groups` update) so logs captured elsewhere can be checked too.
 */
function toMessage(value: unknown): OutgoingMessage | string {
  if (!isObject(value)) return 'not a JSON object';
  if (typeof value.kind === 'string' && 'payload' in value) {
    const payload = value.payload;
    if (!isObject(payload)) return 'payload is not an object';
    if (value.kind === 'event') {
      if (typeof payload.event !== 'string' || !isObject(payload.properties)) {
        return 'event without a name or properties';
      }
      return value as unknown as OutgoingMessage;
    }
    if (value.kind === 'profile') {
      return typeof payload.$distinct_id === 'string'
        ? (value as unknown as OutgoingMessage)
        : 'profile update without $distinct_id';
    }
    if (value.kind === 'group') {
      return typeof payload.$group_key === 'string'
        ? (value as unknown as OutgoingMessage)
        : 'group update without $group_key';
    }
    return `unknown message kind "${value.kind}"`;
  }
  if (typeof value.event === 'string' && isObject(value.properties)) {
    return { kind: 'event', payload: value } as unknown as OutgoingMessage;
  }
  if (typeof value.$distinct_id === 'string')
    return { kind: 'profile', payload: value } as unknown as OutgoingMessage;
  if (typeof value.$group_key === 'string')
    return { kind: 'group', payload: value } as unknown as OutgoingMessage;
  return 'neither a message nor a Mixpanel event or update';
}

/**
 * Parses NDJSON text into messages. A line that cannot be read is listed in `unreadable` and skipped; it
 * never hides the lines around it, so a log whose last line was cut off by a crash loses only that line.
 */
export function parseNdjson(text: string): NdjsonReadResult {
  const result: NdjsonReadResult = { messages: [], lineNumbers: [], unreadable: [] };
  const lines = text.split('\n');
  const endsCleanly = text.endsWith('\n');
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    const lineNumber = i + 1;
    const isLast = i === lines.length - 1;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      result.unreadable.push({
        line: lineNumber,
        reason:
          isLast && !endsCleanly
            ? 'truncated: the process probably stopped while writing it'
            : 'not valid JSON (a write cut short by a crash?)',
        excerpt: line.slice(0, 120),
      });
      return;
    }
    const message = toMessage(value);
    if (typeof message === 'string') {
      result.unreadable.push({ line: lineNumber, reason: message, excerpt: line.slice(0, 120) });
      return;
    }
    result.messages.push(message);
    result.lineNumbers.push(lineNumber);
  });
  return result;
}

/** Reads and parses an NDJSON log. Rejects when the file cannot be read (missing, a directory, no access). */
export async function readNdjsonFile(path: string): Promise<NdjsonReadResult> {
  return parseNdjson(await readFile(path, 'utf8'));
}
