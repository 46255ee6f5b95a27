/**
 * The flows of Mixpanel's ID Merge guides (../shared/seeds), as one table every adapter replays over real
 * HTTP. Symbols stand for generated IDs: D1, D2... are device IDs in order of first appearance, U1, U2...
 * user IDs. In "Multiple Users, One Device" the Simplified guide's last note says D1, D2 and U1 share a
 * cluster; that is a typo — by its own rules D2 links to U2 — and the table follows the rules.
 */
import type { IdMergeMode } from '@idstitch/core';

export type JourneyStep =
  /** The client requests a page whose handler tracks `event`. */
  | { client: string; track: string }
  /** The client signs in as `user` (the session changes inside the handler). */
  | { client: string; login: string }
  /** The client signs out. */
  | { client: string; logout: true }
  /** The handler calls `tracker.reset()` (the Original guide's "Sign-up" click). */
  | { client: string; reset: true };

/** One emitted event as the guide's tables show it. Omitted fields must be absent from the event. */
export interface ExpectedEvent {
  event: string;
  $device_id: string;
  $user_id?: string;
  distinct_id: string;
  $anon_id?: string;
  $identified_id?: string;
}

export interface Journey {
  name: string;
  idMerge: IdMergeMode;
  resetOnLogout?: boolean;
  steps: JourneyStep[];
  expected: ExpectedEvent[];
}

const IDENTIFIED = 'Identified';

const simplifiedSignup: JourneyStep[] = [
  { client: 'laptop', track: '1' },
  { client: 'laptop', track: '2' },
  { client: 'laptop', login: 'U1' },
  { client: 'laptop', track: '3' },
];
const simplifiedSignupEvents: ExpectedEvent[] = [
  { event: '1', $device_id: 'D1', distinct_id: '$device:D1' },
  { event: '2', $device_id: 'D1', distinct_id: '$device:D1' },
  { event: IDENTIFIED, $device_id: 'D1', $user_id: 'U1', distinct_id: 'U1' },
  { event: '3', $device_id: 'D1', $user_id: 'U1', distinct_id: 'U1' },
];

export const journeys: Journey[] = [
  {
    name: 'Simplified: new user signup',
    idMerge: 'simplified',
    steps: simplifiedSignup,
    expected: simplifiedSignupEvents,
  },
  {
    name: 'Simplified: returning user on a second device',
    idMerge: 'simplified',
    steps: [
      ...simplifiedSignup,
      { client: 'phone', track: '4' },
      { client: 'phone', track: '5' },
      { client: 'phone', login: 'U1' },
      { client: 'phone', track: '6' },
    ],
    expected: [
      ...simplifiedSignupEvents,
      { event: '4', $device_id: 'D2', distinct_id: '$device:D2' },
      { event: '5', $device_id: 'D2', distinct_id: '$device:D2' },
      { event: IDENTIFIED, $device_id: 'D2', $user_id: 'U1', distinct_id: 'U1' },
      { event: '6', $device_id: 'D2', $user_id: 'U1', distinct_id: 'U1' },
    ],
  },
  {
    name: 'Simplified: multiple users, one device (reset on logout)',
    idMerge: 'simplified',
    steps: [
      { client: 'kiosk', track: '1' },
      { client: 'kiosk', login: 'U1' },
      { client: 'kiosk', track: '2' },
      { client: 'kiosk', logout: true },
      { client: 'kiosk', track: '3' },
      { client: 'kiosk', track: '4' },
      { client: 'kiosk', login: 'U2' },
      { client: 'kiosk', track: '5' },
    ],
    expected: [
      { event: '1', $device_id: 'D1', distinct_id: '$device:D1' },
      { event: IDENTIFIED, $device_id: 'D1', $user_id: 'U1', distinct_id: 'U1' },
      { event: '2', $device_id: 'D1', $user_id: 'U1', distinct_id: 'U1' },
      { event: '3', $device_id: 'D2', distinct_id: '$device:D2' },
      { event: '4', $device_id: 'D2', distinct_id: '$device:D2' },
      { event: IDENTIFIED, $device_id: 'D2', $user_id: 'U2', distinct_id: 'U2' },
      { event: '5', $device_id: 'D2', $user_id: 'U2', distinct_id: 'U2' },
    ],
  },
  {
    name: 'Simplified: user switch without logout never inherits the device',
    idMerge: 'simplified',
    steps: [
      { client: 'shared', login: 'U1' },
      { client: 'shared', track: 'a' },
      { client: 'shared', login: 'U2' },
      { client: 'shared', track: 'b' },
    ],
    expected: [
      { event: IDENTIFIED, $device_id: 'D1', $user_id: 'U1', distinct_id: 'U1' },
      { event: 'a', $device_id: 'D1', $user_id: 'U1', distinct_id: 'U1' },
      { event: IDENTIFIED, $device_id: 'D2', $user_id: 'U2', distinct_id: 'U2' },
      { event: 'b', $device_id: 'D2', $user_id: 'U2', distinct_id: 'U2' },
    ],
  },
  {
    name: 'Simplified: resetOnLogout false keeps the device linked',
    idMerge: 'simplified',
    resetOnLogout: false,
    steps: [
      { client: 'laptop', login: 'U1' },
      { client: 'laptop', logout: true },
      { client: 'laptop', track: 'after logout' },
      { client: 'laptop', login: 'U1' },
      { client: 'laptop', track: 'back' },
    ],
    expected: [
      { event: IDENTIFIED, $device_id: 'D1', $user_id: 'U1', distinct_id: 'U1' },
      { event: 'after logout', $device_id: 'D1', distinct_id: '$device:D1' },
      { event: 'back', $device_id: 'D1', $user_id: 'U1', distinct_id: 'U1' },
    ],
  },
  {
    name: 'Original: new user signup and returning user',
    idMerge: 'original',
    steps: [
      { client: 'laptop', track: 'browse' },
      { client: 'laptop', login: 'U1' },
      { client: 'laptop', track: 'buy' },
      { client: 'phone', track: 'browse' },
      { client: 'phone', login: 'U1' },
      { client: 'phone', track: 'buy' },
    ],
    expected: [
      { event: 'browse', $device_id: 'D1', distinct_id: 'D1' },
      {
        event: '$identify',
        $device_id: 'D1',
        $user_id: 'U1',
        distinct_id: 'U1',
        $anon_id: 'D1',
        $identified_id: 'U1',
      },
      { event: 'buy', $device_id: 'D1', $user_id: 'U1', distinct_id: 'U1' },
      { event: 'browse', $device_id: 'D2', distinct_id: 'D2' },
      {
        event: '$identify',
        $device_id: 'D2',
        $user_id: 'U1',
        distinct_id: 'U1',
        $anon_id: 'D2',
        $identified_id: 'U1',
      },
      { event: 'buy', $device_id: 'D2', $user_id: 'U1', distinct_id: 'U1' },
    ],
  },
  {
    name: 'Original: multiple users, one device (no reset on logout; reset on "Sign-up")',
    idMerge: 'original',
    steps: [
      { client: 'kiosk', track: '1' },
      { client: 'kiosk', login: 'U1' },
      { client: 'kiosk', logout: true },
      { client: 'kiosk', track: 'still U1' },
      { client: 'kiosk', login: 'U1' },
      { client: 'kiosk', logout: true },
      { client: 'kiosk', reset: true },
      { client: 'kiosk', track: 'signing up' },
      { client: 'kiosk', login: 'U2' },
      { client: 'kiosk', track: 'welcome' },
    ],
    expected: [
      { event: '1', $device_id: 'D1', distinct_id: 'D1' },
      {
        event: '$identify',
        $device_id: 'D1',
        $user_id: 'U1',
        distinct_id: 'U1',
        $anon_id: 'D1',
        $identified_id: 'U1',
      },
      { event: 'still U1', $device_id: 'D1', distinct_id: 'D1' },
      { event: 'signing up', $device_id: 'D2', distinct_id: 'D2' },
      {
        event: '$identify',
        $device_id: 'D2',
        $user_id: 'U2',
        distinct_id: 'U2',
        $anon_id: 'D2',
        $identified_id: 'U2',
      },
      { event: 'welcome', $device_id: 'D2', $user_id: 'U2', distinct_id: 'U2' },
    ],
  },
  {
    name: 'Original: another user signing in on a linked device gets a fresh device',
    idMerge: 'original',
    steps: [
      { client: 'kiosk', login: 'U1' },
      { client: 'kiosk', logout: true },
      { client: 'kiosk', login: 'U2' },
      { client: 'kiosk', track: 'hello' },
    ],
    expected: [
      {
        event: '$identify',
        $device_id: 'D1',
        $user_id: 'U1',
        distinct_id: 'U1',
        $anon_id: 'D1',
        $identified_id: 'U1',
      },
      {
        event: '$identify',
        $device_id: 'D2',
        $user_id: 'U2',
        distinct_id: 'U2',
        $anon_id: 'D2',
        $identified_id: 'U2',
      },
      { event: 'hello', $device_id: 'D2', $user_id: 'U2', distinct_id: 'U2' },
    ],
  },
];
