/**
 * The spool's on-disk formats. Node-only (Buffer, `node:zlib`): loaded only when a spool is configured.
 *
 * A segment file (`<n>.seg`) is a sequence of records, each checksummed on its own so that a torn tail
 * (a crash mid-write) or flipped bytes cost only the records they touch:
 *
 * | bytes | field                                                                          |
 * | ----- | ------------------------------------------------------------------------------ |
 * | 4     | magic `SPL1` (u32 LE 0x314c5053), to find the next record after damage          |
 * | 4     | body length                                                                    |
 * | 4     | CRC-32 of the body                                                             |
 * | 4     | body: the record's index in its segment                                        |
 * | 8     | body: the writer's sequence number (f64)                                       |
 * | 1     | body: endpoint code; bit 7 set: the event's `$insert_id` follows               |
 * | 1 + k | body, with bit 7: k, then the `$insert_id` (ASCII)                             |
 * | n     | body: the message as sent to Mixpanel (JSON, UTF-8; `$insert_id` and `time` in) |
 *
 * The `$insert_id` beside the JSON saves parsing every event read back (to match Mixpanel's refusals,
 * which name events by it): it is the one the sink stamped in `properties`, never one nested in a caller
 * property. Records without it (written before it was added, or an ID that is not short ASCII) are parsed.
 *
 * Its ledger (`<n>.ack`) is a sequence of entries `magic | count | CRC-32 | count × u32 index`, where
 * the magic says what happened to those records: `ACK1` settled (delivered or dropped, never to be sent
 * again) or `SND1` about to be sent (written before a profile or group update goes out).
 */
import { crc32 } from 'node:zlib';
import type { MixpanelEndpoint } from '../mixpanel/endpoint.js';

export const RECORD_MAGIC = 0x314c5053;
export const ACK_MAGIC = 0x314b4341;
export const SENDING_MAGIC = 0x31444e53;
export const NOT_SENT_MAGIC = 0x31544e4e;
const MAGIC_BYTES = Buffer.from([0x53, 0x50, 0x4c, 0x31]);
const HEADER = 12;
const BODY_FIXED = 13;
/** Bytes of a record beyond its JSON: the smallest record is this plus a few. */
export const RECORD_OVERHEAD = HEADER + BODY_FIXED;
/** Larger than any message the sink accepts (1 MB) plus the fixed fields. */
const MAX_BODY = 2 * 1024 * 1024;
/** Bit of the endpoint code: an `$insert_id` follows. */
const HAS_INSERT_ID = 0x80;
/** Longest `$insert_id` kept beside the JSON (Mixpanel's are at most 36 characters). */
const MAX_INSERT_ID = 255;

const ENDPOINTS: readonly MixpanelEndpoint[] = ['import', 'track', 'engage', 'groups'];

/** One record read back from a segment. */
export interface ParsedRecord {
  index: number;
  seq: number;
  endpoint: MixpanelEndpoint;
  json: string;
  /** The event's `$insert_id`, when the record carries it beside the JSON. */
  insertId: string | undefined;
  /** Offset of the record, and just past it. */
  start: number;
  end: number;
}

/** Damage found while parsing: bytes skipped that hold no valid record. */
export interface Damage {
  offset: number;
  bytes: number;
  /** The damaged bytes run to the end of what was read: a torn tail. */
  tail: boolean;
}

/** Bytes `insertId` takes beside the JSON: 0 when it is not kept there (absent, too long, not ASCII). */
export function insertIdBytes(insertId: string | undefined): number {
  // Not a string (a message that skipped validation): not kept, the JSON says what it is.
  if (typeof insertId !== 'string' || insertId.length > MAX_INSERT_ID) return 0;
  // ASCII only: it reads back exactly as written (a lone surrogate would not).
  for (let i = 0; i < insertId.length; i += 1) if (insertId.charCodeAt(i) > 0x7f) return 0;
  return 1 + insertId.length;
}

/** Bytes of the record {@link encodeRecord} makes. */
export function recordBytes(jsonBytes: number, insertId: string | undefined): number {
  return RECORD_OVERHEAD + insertIdBytes(insertId) + jsonBytes;
}

/**
 * One record. `insertId`: the event's own `properties.$insert_id` (as stamped by the sink), kept beside the
 * JSON when it is short ASCII.
 */
export function encodeRecord(
  index: number,
  seq: number,
  endpoint: MixpanelEndpoint,
  json: string,
  insertId?: string,
): Buffer {
  const buffer = Buffer.allocUnsafe(recordBytes(Buffer.byteLength(json, 'utf8'), insertId));
  writeRecord(buffer, 0, index, seq, endpoint, json, insertId);
  return buffer;
}

/**
 * Writes one record into `target` at `at`, where {@link recordBytes} bytes are free; returns where it ends.
 * The spool writes a batch of records straight into one buffer: a buffer per record, copied once more into
 * the batch, was garbage of twice the bytes spilled.
 */
export function writeRecord(
  target: Buffer,
  at: number,
  index: number,
  seq: number,
  endpoint: MixpanelEndpoint,
  json: string,
  insertId: string | undefined,
): number {
  const idBytes = insertIdBytes(insertId);
  const jsonAt = at + HEADER + BODY_FIXED + idBytes;
  const end = jsonAt + target.write(json, jsonAt, 'utf8');
  target.writeUInt32LE(RECORD_MAGIC, at);
  target.writeUInt32LE(end - at - HEADER, at + 4);
  target.writeUInt32LE(index, at + 12);
  target.writeDoubleLE(seq, at + 16);
  const code = ENDPOINTS.indexOf(endpoint);
  if (idBytes > 0) {
    target.writeUInt8(code | HAS_INSERT_ID, at + 24);
    target.writeUInt8(idBytes - 1, at + 25);
    target.write(insertId as string, at + 26, 'latin1');
  } else {
    target.writeUInt8(code, at + 24);
  }
  target.writeUInt32LE(crc32(target.subarray(at + HEADER, end)), at + 8);
  return end;
}

/** The record starting at `offset`, `'short'` if the buffer ends inside it, or `'bad'`. */
function recordAt(buffer: Buffer, offset: number): ParsedRecord | 'short' | 'bad' {
  if (offset + HEADER > buffer.length) return 'short';
  if (buffer.readUInt32LE(offset) !== RECORD_MAGIC) return 'bad';
  const body = buffer.readUInt32LE(offset + 4);
  if (body < BODY_FIXED || body > MAX_BODY) return 'bad';
  const end = offset + HEADER + body;
  if (end > buffer.length) return 'short';
  const bodyBytes = buffer.subarray(offset + HEADER, end);
  if (crc32(bodyBytes) !== buffer.readUInt32LE(offset + 8)) return 'bad';
  const code = bodyBytes.readUInt8(12);
  const endpoint = ENDPOINTS[code & ~HAS_INSERT_ID];
  if (endpoint === undefined) return 'bad';
  let jsonStart = BODY_FIXED;
  let insertId: string | undefined;
  if (code & HAS_INSERT_ID) {
    if (body < BODY_FIXED + 1) return 'bad';
    const length = bodyBytes.readUInt8(BODY_FIXED);
    jsonStart = BODY_FIXED + 1 + length;
    if (jsonStart > body) return 'bad';
    insertId = bodyBytes.toString('latin1', BODY_FIXED + 1, jsonStart);
  }
  return {
    index: bodyBytes.readUInt32LE(0),
    seq: bodyBytes.readDoubleLE(4),
    endpoint,
    json: bodyBytes.toString('utf8', jsonStart),
    insertId,
    start: offset,
    end,
  };
}

/**
 * Parses the records of `buffer` from `offset`. A record whose checksum fails is skipped: parsing
 * resumes at the next offset where a whole valid record starts, so one damaged record never hides
 * the ones after it. When `complete` is false, a record cut by the end of the buffer is left for a
 * later read (`next` points at it); when true, it is damage at the tail.
 */
export function parseRecords(
  buffer: Buffer,
  offset: number,
  complete: boolean,
): { records: ParsedRecord[]; damage: Damage[]; next: number } {
  const records: ParsedRecord[] = [];
  const damage: Damage[] = [];
  let at = offset;
  while (at < buffer.length) {
    const record = recordAt(buffer, at);
    if (typeof record === 'object') {
      records.push(record);
      at = record.end;
      continue;
    }
    if (record === 'short' && !complete) break;
    // Resynchronise: the next offset where a whole valid record starts.
    let next = at + 1;
    for (;;) {
      next = buffer.indexOf(MAGIC_BYTES, next);
      if (next < 0) {
        next = buffer.length;
        break;
      }
      const candidate = recordAt(buffer, next);
      if (typeof candidate === 'object' || (candidate === 'short' && !complete)) break;
      next += 1;
    }
    damage.push({ offset: at, bytes: next - at, tail: next >= buffer.length });
    at = next;
  }
  return { records, damage, next: at };
}

export function encodeLedger(magic: number, indexes: readonly number[]): Buffer {
  const buffer = Buffer.allocUnsafe(12 + 4 * indexes.length);
  buffer.writeUInt32LE(magic, 0);
  buffer.writeUInt32LE(indexes.length, 4);
  for (let i = 0; i < indexes.length; i += 1) buffer.writeUInt32LE(indexes[i] as number, 12 + 4 * i);
  buffer.writeUInt32LE(crc32(buffer.subarray(12)), 8);
  return buffer;
}

/** Reads a ledger; a damaged or torn entry ends it (what follows cannot be trusted to be aligned). */
export function parseLedger(buffer: Buffer): { acked: Set<number>; sending: Set<number>; damaged: boolean } {
  const acked = new Set<number>();
  const sending = new Set<number>();
  let at = 0;
  while (at + 12 <= buffer.length) {
    const magic = buffer.readUInt32LE(at);
    const count = buffer.readUInt32LE(at + 4);
    const end = at + 12 + 4 * count;
    if ((magic !== ACK_MAGIC && magic !== SENDING_MAGIC && magic !== NOT_SENT_MAGIC) || end > buffer.length)
      break;
    if (crc32(buffer.subarray(at + 12, end)) !== buffer.readUInt32LE(at + 8)) break;
    for (let i = at + 12; i < end; i += 4) {
      const index = buffer.readUInt32LE(i);
      if (magic === ACK_MAGIC) acked.add(index);
      else if (magic === SENDING_MAGIC) sending.add(index);
      else sending.delete(index);
    }
    at = end;
  }
  return { acked, sending, damaged: at !== buffer.length };
}
