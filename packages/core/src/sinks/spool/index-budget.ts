/**
 * The memory budget of the disk spool's indexes of records held on disk only (`unread-index.ts`): what it is,
 * and what the spool does at it. Free of Node APIs.
 */
import { IdstitchError } from '../../errors.js';
import type { UnreadIndex } from './unread-index.js';

/** The least index budget, whatever the disk budget: a spool of a few hundred KiB still spills freely. */
const MIN_INDEX_BUDGET = 64 * 1024;

/**
 * Bytes of memory the indexes of a spool's disk-only records may take: 1/32 of its disk budget (32 MiB for the
 * default 1 GiB), at least 64 KiB. The per-record arrays stay far below it: a record takes at least 27 bytes
 * on disk and 3 bits in the index (6 with the slack of doubling), under 1/32 of it; only a segment's first allocation
 * (96 bytes) can be more than its few records. Sequence runs could reach it (a run per record would need the
 * spool to refuse every other message); then new messages are not spilled (see {@link IndexBudget}).
 */
export function indexBudget(maxBytes: number): number {
  return Math.max(MIN_INDEX_BUDGET, Math.floor(maxBytes / 32));
}

/** Bytes of memory the indexes of these segments take. */
export function indexBytes(segments: readonly { readonly unread: UnreadIndex }[]): number {
  let bytes = 0;
  for (const segment of segments) bytes += segment.unread.bytes;
  return bytes;
}

/**
 * Whether an index may take one more record. It grows only now and then (an array doubles); past the
 * budget the record is refused, as with a full disk: the message takes the memory policy, and its drop, if
 * any, is counted there. Reported (`spool_full`) when that starts and when there is room again.
 */
export class IndexBudget {
  readonly #budget: number;
  readonly #dir: string;
  readonly #report: (error: IdstitchError) => void;
  #full = false;

  constructor(maxBytes: number, dir: string, report: (error: IdstitchError) => void) {
    this.#budget = indexBudget(maxBytes);
    this.#dir = dir;
    this.#report = report;
  }

  /** Whether `unread` may take record `index` with `seq`, the indexes of `segments` (its own among them) as they are. */
  admits(
    segments: readonly { readonly unread: UnreadIndex }[],
    unread: UnreadIndex,
    index: number,
    seq: number,
  ): boolean {
    const growth = unread.growth(index, seq);
    if (growth === 0) return true;
    const held = indexBytes(segments);
    const fits = held + growth <= this.#budget;
    if (fits === this.#full) {
      this.#full = !fits;
      const budget = this.#budget;
      this.#report(
        new IdstitchError(
          'spool_full',
          fits
            ? `spool ${this.#dir} has room in its index again`
            : `the index of the messages spool ${this.#dir} holds on disk only reached its budget of ${budget} ` +
                'bytes of memory (maxBytes / 32); new messages are held in memory (and dropped by the memory ' +
                'policy) until it has room',
          { details: { dir: this.#dir, indexBytes: held, budget } },
        ),
      );
    }
    return fits;
  }
}
