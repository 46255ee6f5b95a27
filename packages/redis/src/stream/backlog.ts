import { IdstitchError } from '@idstitch/core';

/**
 * Watches the stream's length against `maxStreamLength`: reports once when it goes over, and once
 * when it is back under half (so a length hovering at the bound is not reported on every check).
 */
export class BacklogMonitor {
  #over = false;
  #length: number | undefined;

  constructor(
    private readonly stream: string,
    private readonly max: number,
    private readonly report: (error: IdstitchError) => void,
  ) {}

  get length(): number | undefined {
    return this.#length;
  }

  get over(): boolean {
    return this.#over;
  }

  observe(length: number): void {
    this.#length = length;
    if (!this.#over && length > this.max) {
      this.#over = true;
      this.report(
        new IdstitchError(
          'queue_overflow',
          `the outbox stream ${this.stream} holds ${length} undelivered messages, over maxStreamLength ` +
            `${this.max}; nothing is trimmed. Check that delivery workers run and Mixpanel accepts them.`,
          {
            details: {
              state: 'started',
              stream: this.stream,
              streamLength: length,
              maxStreamLength: this.max,
            },
          },
        ),
      );
    } else if (this.#over && length <= this.max / 2) {
      this.#over = false;
      this.report(
        new IdstitchError(
          'queue_overflow',
          `the outbox stream ${this.stream} is back to ${length} undelivered messages`,
          {
            details: {
              state: 'stopped',
              stream: this.stream,
              streamLength: length,
              maxStreamLength: this.max,
            },
          },
        ),
      );
    }
  }
}
