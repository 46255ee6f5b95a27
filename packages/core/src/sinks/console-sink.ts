import type { DropReason, OutgoingMessage, Sink } from '../messages/types.js';

export interface ConsoleSinkOptions {
  /** Where each line goes. Default: `console.log`. */
  log?: (line: string) => void;
}

/** Prints every message as one line of JSON, for development. Delivers nothing anywhere. */
export class ConsoleSink implements Sink {
  private readonly log: (line: string) => void;

  constructor(options: ConsoleSinkOptions = {}) {
    this.log = options.log ?? ((line) => console.log(line));
  }

  write(message: OutgoingMessage): void {
    this.log(`[idstitch] ${message.kind} ${JSON.stringify(message.payload)}`);
  }

  recordDrop(reason: DropReason, count = 1): void {
    this.log(`[idstitch] dropped ${count} (${reason})`);
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}
}
