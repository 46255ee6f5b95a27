/**
 * The entries a worker holds (read, handed to the sink, not yet acknowledged or released), bounded in
 * entries and in serialised bytes: reading pauses while either bound is reached, and resumes as soon as
 * an entry is let go.
 */
export class InFlight {
  /** Entry ID → its serialised bytes. */
  readonly #held = new Map<string, number>();
  #bytes = 0;
  #roomWaiters: (() => void)[] = [];

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
    private readonly readCount: number,
  ) {}

  /** Entries held now. */
  get size(): number {
    return this.#held.size;
  }

  has(id: string): boolean {
    return this.#held.has(id);
  }

  /** The IDs of every entry held now. */
  ids(): string[] {
    return [...this.#held.keys()];
  }

  add(id: string, bytes: number): void {
    this.#held.set(id, bytes);
    this.#bytes += bytes;
  }

  /** Lets an entry go (acknowledged, or left pending for a later claim), and wakes a paused reader. */
  release(id: string): void {
    const bytes = this.#held.get(id);
    if (bytes === undefined) return;
    this.#held.delete(id);
    this.#bytes -= bytes;
    this.wake();
  }

  /** How many entries the next read may ask for: at least 1, at most `readCount`. */
  room(): number {
    return Math.max(1, Math.min(this.readCount, this.maxEntries - this.#held.size));
  }

  hasRoom(): boolean {
    return this.#held.size < this.maxEntries && this.#bytes < this.maxBytes;
  }

  /** Resolves when an entry is let go, {@link InFlight.wake} is called, or `signal` aborts. */
  waitForRoom(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      this.#roomWaiters.push(resolve);
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  /** Wakes every reader waiting for room (a flush asks it to read, or the worker closes). */
  wake(): void {
    for (const wake of this.#roomWaiters.splice(0)) wake();
  }
}
