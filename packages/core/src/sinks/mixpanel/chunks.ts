import type { MixpanelMessageOutcome } from './events.js';
import type { QueuedMessage } from './queue.js';

/** The Buffer methods the store uses, when the runtime has Buffer (Node). */
export interface ChunkBuffer extends Uint8Array {
  write(text: string, offset: number, encoding: 'utf8'): number;
  toString(encoding?: 'utf8', start?: number, end?: number): string;
  copy(target: Uint8Array, targetStart: number, sourceStart: number, sourceEnd: number): number;
}

const nodeBuffer = (globalThis as { Buffer?: { allocUnsafeSlow(size: number): ChunkBuffer } }).Buffer;

/**
 * Size of one chunk. Small enough that the chunks a few long-lived batches pin (a chunk lives while any
 * message in it is queued) stay a few megabytes at most, large enough that allocating one is rare (one per
 * ~100 typical events).
 */
export const CHUNK_BYTES = 64 * 1024;
/** A message whose JSON could take more than this stays a string: it would waste most of a chunk. */
const MAX_CHUNKED_CHARS = Math.floor(CHUNK_BYTES / 12);

/**
 * A queued message whose JSON lives in a {@link JsonChunks} chunk, outside V8's heap, instead of in a string.
 * The event's JSON string then dies young: a queue of thousands of events waiting for their batch is no
 * longer copied by every scavenge and promoted to the old generation, where it made full GCs frequent.
 * `json` decodes the bytes again, for the rare paths that need a string (the spool, the exact fallback).
 */
export class ChunkedMessage implements QueuedMessage {
  constructor(
    readonly seq: number,
    readonly chunk: ChunkBuffer,
    /** Offset of the message's first byte in `chunk`; `bytes` follow, then a `,`. */
    readonly start: number,
    readonly bytes: number,
    readonly insertId: string | undefined,
    readonly settled: ((outcome: MixpanelMessageOutcome) => void) | undefined,
    readonly spoolId: number | undefined,
  ) {}

  get json(): string {
    return this.chunk.toString('utf8', this.start, this.start + this.bytes);
  }
}

/**
 * Where the JSON of queued messages is written as it is accepted: one Buffer after another, each message
 * followed by a comma, so that the messages of a batch, taken in order, are mostly one contiguous run the
 * body encoder copies at once. A message is written tentatively (`write`), and only `commit` keeps it: a
 * message dropped after serialising (too large, no room) leaves nothing behind. Where there is no Buffer
 * (workerd), `write` returns -1 and the caller keeps the string.
 */
export class JsonChunks {
  #chunk: ChunkBuffer | undefined;
  #offset = 0;
  /** Where the last `write` started and how many bytes it took (the comma excluded). */
  #start = 0;
  #bytes = 0;

  /** The chunk the last successful `write` went to. */
  get chunk(): ChunkBuffer {
    return this.#chunk as ChunkBuffer;
  }

  /** Offset of the last successful `write` in {@link chunk}. */
  get start(): number {
    return this.#start;
  }

  /**
   * Writes `json` as UTF-8, with `suffix` (bytes, already UTF-8) replacing its last `cut` characters (which must be
   * ASCII), and returns how many bytes that took; -1 when it was not written (no Buffer, or too large for a
   * chunk), then the caller keeps a string.
   */
  write(json: string, cut = 0, suffix?: Uint8Array): number {
    if (nodeBuffer === undefined || json.length > MAX_CHUNKED_CHARS) return -1;
    // A UTF-16 code unit never takes more than 3 bytes in UTF-8; room for that, the suffix and the comma.
    const most = json.length * 3 + (suffix?.length ?? 0) + 1;
    if (this.#chunk === undefined || this.#chunk.length - this.#offset < most) {
      this.#chunk = nodeBuffer.allocUnsafeSlow(CHUNK_BYTES);
      this.#offset = 0;
    }
    const chunk = this.#chunk;
    let end = this.#offset + chunk.write(json, this.#offset, 'utf8');
    if (suffix !== undefined) {
      end -= cut;
      for (let i = 0; i < suffix.length; i += 1) chunk[end + i] = suffix[i] as number;
      end += suffix.length;
    }
    chunk[end] = 0x2c; // ,
    this.#start = this.#offset;
    this.#bytes = end - this.#offset;
    return this.#bytes;
  }

  /** Keeps what the last `write` wrote. */
  commit(): void {
    this.#offset = this.#start + this.#bytes + 1;
  }
}
