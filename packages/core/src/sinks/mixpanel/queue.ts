import type { MixpanelMessageOutcome } from './events.js';

/**
 * One accepted message, serialised once when it was written. Keeping the JSON (rather than the
 * object) is what makes every retry carry byte-identical events, and it is what the byte budgets count.
 */
export interface QueuedMessage {
  /** Order of acceptance across the whole sink; `flush()` waits for everything up to a sequence number. */
  readonly seq: number;
  readonly json: string;
  /** UTF-8 length of `json`. */
  readonly bytes: number;
  /** `$insert_id` of an event, to match `failed_records` that name the record instead of its index. */
  readonly insertId: string | undefined;
  /** Told how the message ended, when the writer asked (`write(message, settled)`). */
  readonly settled?: ((outcome: MixpanelMessageOutcome) => void) | undefined;
  /** Its record in the spool, when one holds a copy. */
  readonly spoolId?: number | undefined;
}

/** Bytes of a JSON array holding `count` items of `itemBytes` in total: brackets plus commas. */
export function arrayBytes(count: number, itemBytes: number): number {
  return itemBytes + 2 + Math.max(0, count - 1);
}

/**
 * First-in first-out list of messages waiting for a batch. An array with a moving head, because
 * `Array#shift` is linear and a queue can hold tens of thousands of messages.
 */
export class PendingQueue {
  private items: QueuedMessage[] = [];
  private head = 0;
  /** Sum of `bytes` of the waiting messages. */
  bytes = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(message: QueuedMessage): void {
    this.items.push(message);
    this.bytes += message.bytes;
  }

  /** The oldest waiting message. */
  peek(): QueuedMessage | undefined {
    return this.items[this.head];
  }

  /** Removes and returns the oldest waiting message. */
  shift(): QueuedMessage | undefined {
    const message = this.items[this.head];
    if (message === undefined) return undefined;
    this.head += 1;
    this.bytes -= message.bytes;
    this.compact();
    return message;
  }

  /** True when the waiting messages fill at least one request. */
  hasFullBatch(maxMessages: number, maxBytes: number): boolean {
    return this.length >= maxMessages || arrayBytes(this.length, this.bytes) >= maxBytes;
  }

  /**
   * Takes the oldest messages that fit in one request of at most `maxMessages` and `maxBytes`
   * (as a JSON array). Always takes at least one, so a message is never stuck behind the limits.
   */
  take(maxMessages: number, maxBytes: number): QueuedMessage[] {
    const taken: QueuedMessage[] = [];
    let bytes = 0;
    while (taken.length < maxMessages) {
      const next = this.items[this.head];
      if (next === undefined) break;
      if (taken.length > 0 && arrayBytes(taken.length + 1, bytes + next.bytes) > maxBytes) break;
      taken.push(next);
      bytes += next.bytes;
      this.head += 1;
    }
    this.bytes -= bytes;
    this.compact();
    return taken;
  }

  /** Removes and returns everything waiting. */
  drain(): QueuedMessage[] {
    const all = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    this.bytes = 0;
    return all;
  }

  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
