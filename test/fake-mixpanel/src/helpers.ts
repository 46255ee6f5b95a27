/**
 * Small helpers for tests that drive a `MixpanelSink` against the fake: a clock that records backoff
 * waits instead of sleeping, and message factories shaped like the tracker's output.
 */
import { randomUUID } from 'node:crypto';
import type { GroupUpdate, MixpanelClock, OutgoingMessage, ProfileUpdate, Properties } from '@idstitch/core';

/** A clock whose `sleep` returns at once, advancing `now` and recording the wait. */
export interface RecordingClock extends MixpanelClock {
  /** Every wait asked for, in order. */
  readonly delays: number[];
}

/**
 * Creates a {@link RecordingClock} starting at `start` (default: now, rounded down to a whole second
 * so HTTP-date `Retry-After` values are exact). `onSleep` runs inside each sleep, e.g. to bring a
 * fake back up after the second retry.
 */
export function recordingClock(
  start: number = Math.floor(Date.now() / 1000) * 1000,
  onSleep?: (ms: number, index: number) => void | Promise<void>,
): RecordingClock {
  let now = start;
  const delays: number[] = [];
  return {
    delays,
    now: () => now,
    async sleep(ms) {
      delays.push(ms);
      now += ms;
      await onSleep?.(ms, delays.length - 1);
    },
  };
}

/** An event as the tracker makes it: `time` in ms and a fresh UUIDv4 `$insert_id`. */
export function eventMessage(
  name = 'Test Event',
  properties: Properties = {},
  options: { distinctId?: string; time?: number } = {},
): Extract<OutgoingMessage, { kind: 'event' }> {
  return {
    kind: 'event',
    payload: {
      event: name,
      properties: {
        distinct_id: options.distinctId ?? 'user-1',
        time: options.time ?? Date.now(),
        $insert_id: randomUUID(),
        ...properties,
      },
    },
  };
}

export function profileMessage(update: ProfileUpdate): OutgoingMessage {
  return { kind: 'profile', payload: update };
}

export function groupMessage(update: GroupUpdate): OutgoingMessage {
  return { kind: 'group', payload: update };
}
