/**
 * Which records of one segment are held on disk only and not read back yet, and what settling one that can
 * never be read needs (its writer's sequence number, its endpoint). Free of Node APIs.
 *
 * Compact because a stall spills millions of records. The `Map` it replaces (index → offset, seq, endpoint)
 * took about 100 bytes per spilled record: 969 631 spilled events held about 90 MiB of heap. This takes
 * 3 bits per record index of the segment (1 bit "unread", 2 bits endpoint) plus 12 bytes per run of
 * consecutive sequence numbers, in typed arrays grown by doubling. A run breaks only where the writer's
 * sequence skips a number (a message the spool refused went to memory meanwhile): in a stall, one run per
 * segment. Records a previous process left all have sequence number 0: no runs at all.
 *
 * No offsets are kept: a segment's records are written in index order, so "the records before the one just
 * read" and "the records written before the end of what was written" are ranges of indexes.
 */
import type { MixpanelEndpoint } from '../mixpanel/endpoint.js';
import type { DamagedRecord } from './types.js';

const ENDPOINTS: readonly MixpanelEndpoint[] = ['import', 'track', 'engage', 'groups'];
/** Records indexed by the first allocation (a multiple of 8): 96 bytes. */
const FIRST_CAPACITY = 256;
const FIRST_RUNS = 4;
/** Bytes of one run: its first index (u32) and first sequence number (f64). */
const RUN_BYTES = 12;

/** Bytes of the per-record arrays for `capacity` records: 1 + 2 bits each. */
function recordBytes(capacity: number): number {
  return capacity / 8 + capacity / 4;
}

function capacityFor(index: number, capacity: number): number {
  let next = Math.max(capacity, FIRST_CAPACITY);
  while (next <= index) next *= 2;
  return next;
}

export class UnreadIndex {
  /** Records held here (unread). */
  count = 0;
  /** Bit `i`: record `i` is unread. */
  #bits = new Uint8Array(0);
  /** 2 bits per record: its endpoint's code. */
  #endpoints = new Uint8Array(0);
  /** Records the arrays can hold. */
  #capacity = 0;
  /** No unread record has an index below this. */
  #low = 0;
  /** Run `r` starts at index `#runIndex[r]` with sequence number `#runSeq[r]`, one more per index. */
  #runIndex = new Uint32Array(0);
  #runSeq = new Float64Array(0);
  #runs = 0;

  /** Bytes the index holds (its typed arrays). */
  get bytes(): number {
    return (
      this.#bits.byteLength + this.#endpoints.byteLength + this.#runIndex.byteLength + this.#runSeq.byteLength
    );
  }

  /** Bytes {@link add} would allocate for this record: 0 unless an array doubles. */
  growth(index: number, seq: number): number {
    let bytes = 0;
    if (index >= this.#capacity) {
      bytes += recordBytes(capacityFor(index, this.#capacity)) - recordBytes(this.#capacity);
    }
    if (seq !== this.#seqOf(index) && this.#runs === this.#runIndex.length) {
      bytes += RUN_BYTES * Math.max(FIRST_RUNS, this.#runs);
    }
    return bytes;
  }

  /** Record `index` (added in increasing index order) is held on disk only. */
  add(index: number, seq: number, endpoint: MixpanelEndpoint): void {
    if (index >= this.#capacity) this.#grow(capacityFor(index, this.#capacity));
    if (seq !== this.#seqOf(index)) this.#addRun(index, seq);
    const bit = 1 << (index & 7);
    const byte = index >>> 3;
    if ((this.#bits[byte] as number) & bit) return;
    this.#bits[byte] = (this.#bits[byte] as number) | bit;
    const shift = (index & 3) * 2;
    const slot = index >>> 2;
    const code = ENDPOINTS.indexOf(endpoint);
    this.#endpoints[slot] = ((this.#endpoints[slot] as number) & ~(3 << shift)) | (code << shift);
    this.count += 1;
    if (index < this.#low) this.#low = index;
  }

  has(index: number): boolean {
    return index < this.#capacity && ((this.#bits[index >>> 3] as number) & (1 << (index & 7))) !== 0;
  }

  /** Record `index` is read back (or handed back): no longer held. False if it was not. */
  delete(index: number): boolean {
    if (!this.has(index)) return false;
    this.#bits[index >>> 3] = (this.#bits[index >>> 3] as number) & ~(1 << (index & 7));
    this.count -= 1;
    if (index === this.#low) this.#low = index + 1;
    return true;
  }

  /**
   * Removes every record held with an index below `limit`, oldest first, into `out`: the cursor went past
   * them without reading them.
   */
  takeBefore(limit: number, out: DamagedRecord[]): void {
    const end = Math.min(limit, this.#capacity);
    let index = this.#low;
    while (index < end && this.count > 0) {
      // Whole bytes with nothing held are skipped at once.
      if ((index & 7) === 0 && this.#bits[index >>> 3] === 0) {
        index += 8;
        continue;
      }
      if (this.delete(index)) {
        const code = ((this.#endpoints[index >>> 2] as number) >>> ((index & 3) * 2)) & 3;
        out.push({ seq: this.#seqOf(index), endpoint: ENDPOINTS[code] as MixpanelEndpoint });
      }
      index += 1;
    }
    this.#low = Math.max(this.#low, Math.min(index, end));
  }

  /** The sequence number the runs give record `index` (0 before the first run). */
  #seqOf(index: number): number {
    let lo = 0;
    let hi = this.#runs - 1;
    if (hi < 0 || index < (this.#runIndex[0] as number)) return 0;
    // The last run starting at or before `index`; usually the last run of all.
    if (index >= (this.#runIndex[hi] as number)) lo = hi;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((this.#runIndex[mid] as number) <= index) lo = mid;
      else hi = mid - 1;
    }
    return (this.#runSeq[lo] as number) + (index - (this.#runIndex[lo] as number));
  }

  #addRun(index: number, seq: number): void {
    if (this.#runs === this.#runIndex.length) {
      const size = Math.max(FIRST_RUNS, this.#runs * 2);
      const runIndex = new Uint32Array(size);
      const runSeq = new Float64Array(size);
      runIndex.set(this.#runIndex);
      runSeq.set(this.#runSeq);
      this.#runIndex = runIndex;
      this.#runSeq = runSeq;
    }
    this.#runIndex[this.#runs] = index;
    this.#runSeq[this.#runs] = seq;
    this.#runs += 1;
  }

  #grow(capacity: number): void {
    const bits = new Uint8Array(capacity / 8);
    const endpoints = new Uint8Array(capacity / 4);
    bits.set(this.#bits);
    endpoints.set(this.#endpoints);
    this.#bits = bits;
    this.#endpoints = endpoints;
    this.#capacity = capacity;
  }
}
