import type {
  DropReason,
  GroupUpdate,
  MixpanelEvent,
  OutgoingMessage,
  ProfileUpdate,
  Sink,
} from '../messages/types.js';

/**
 * Keeps every message in memory, recorded the moment it is produced. Meant for tests (yours and ours):
 * assert on `events`, `profileUpdates` and `groupUpdates`.
 */
export class MemorySink implements Sink {
  /** Every message in the order it was written. */
  readonly messages: OutgoingMessage[] = [];
  readonly events: MixpanelEvent[] = [];
  readonly profileUpdates: ProfileUpdate[] = [];
  readonly groupUpdates: GroupUpdate[] = [];
  /** Messages dropped before they reached the sink, counted by reason. */
  readonly dropped: Partial<Record<DropReason, number>> = {};

  write(message: OutgoingMessage): void {
    this.messages.push(message);
    if (message.kind === 'event') this.events.push(message.payload);
    else if (message.kind === 'profile') this.profileUpdates.push(message.payload);
    else this.groupUpdates.push(message.payload);
  }

  recordDrop(reason: DropReason, count = 1): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + count;
  }

  /** Events with the given name, in order. */
  eventsNamed(name: string): MixpanelEvent[] {
    return this.events.filter((event) => event.event === name);
  }

  /** Forgets everything recorded so far. */
  clear(): void {
    this.messages.length = 0;
    this.events.length = 0;
    this.profileUpdates.length = 0;
    this.groupUpdates.length = 0;
    for (const reason of Object.keys(this.dropped)) delete this.dropped[reason as DropReason];
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}
}
