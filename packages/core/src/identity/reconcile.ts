/**
 * Identity rules as a pure function: what a request's identity state becomes, and what must be emitted,
 * given the state it arrived with and the user the app's auth says is signed in now.
 */

/** What idstitch remembers between requests (in the device cookie). Never holds the raw user ID. */
export interface IdentityState {
  deviceId: string;
  /** Keyed hash of the user last linked to this device, or undefined while the device is anonymous. */
  userTag: string | undefined;
}

/** How the state changed. */
export type IdentityTransition =
  /** No usable state arrived: a device ID was minted. */
  | 'new-device'
  /** Anonymous before and now. */
  | 'anonymous'
  /** Anonymous before, signed in now: link the device to the user. */
  | 'login'
  /** Same user as before (or a signed-out device kept, see `resetOnLogout`). */
  | 'steady'
  /** Signed in before, signed out now. */
  | 'logout'
  /** A different user signed in on a device linked to someone else. */
  | 'switch-user';

/** Something the tracker must emit because of a transition. */
export type IdentityAction =
  /** Link `deviceId` to `userId` (Simplified: an event with both IDs; Original: `$identify`). */
  | {
      type: 'identify';
      userId: string;
      deviceId: string;
      /**
       * False when the device came from an unauthenticated source (the `deviceIdHeader`, mixpanel-browser's
       * cookie): anyone can send its value, so anonymous profile updates held for it are discarded, not applied to
       * the user. Default true.
       */
      carryHeldUpdates?: boolean;
    }
  /** Forget the device: later events use `deviceId`, a fresh one. */
  | {
      type: 'reset';
      previousDeviceId: string;
      deviceId: string;
      reason: 'logout' | 'switch-user' | 'explicit';
    };

export interface ReconcileInput {
  /** State the request arrived with; undefined when the cookie was missing or rejected. */
  previous: IdentityState | undefined;
  /** The signed-in user now, or undefined when anonymous. */
  userId: string | undefined;
  /** True when `previous.userTag` was computed for `userId`. */
  isLinkedUser: (userTag: string, userId: string) => boolean;
  /** Keyed hash for `userId` on `deviceId`. */
  tagUser: (userId: string, deviceId: string) => string;
  /** Rotate the device ID when a signed-in user signs out. */
  resetOnLogout: boolean;
  newDeviceId: () => string;
}

export interface ReconcileResult {
  state: IdentityState;
  transition: IdentityTransition;
  actions: IdentityAction[];
}

function linked(deviceId: string, userId: string, input: ReconcileInput): ReconcileResult['state'] {
  return { deviceId, userTag: input.tagUser(userId, deviceId) };
}

/** Decides the next identity state and the actions that Mixpanel's ID Merge needs. Pure but for `newDeviceId`. */
export function reconcileIdentity(input: ReconcileInput): ReconcileResult {
  const { previous, userId } = input;
  if (previous === undefined) {
    const deviceId = input.newDeviceId();
    if (userId === undefined)
      return { state: { deviceId, userTag: undefined }, transition: 'new-device', actions: [] };
    // Signed in on a device we have no state for (cookie cleared, new browser): link the new device.
    return {
      state: linked(deviceId, userId, input),
      transition: 'new-device',
      actions: [{ type: 'identify', userId, deviceId }],
    };
  }
  const { deviceId, userTag } = previous;
  if (userTag === undefined) {
    if (userId === undefined) return { state: previous, transition: 'anonymous', actions: [] };
    return {
      state: linked(deviceId, userId, input),
      transition: 'login',
      actions: [{ type: 'identify', userId, deviceId }],
    };
  }
  if (userId === undefined) {
    if (!input.resetOnLogout) return { state: previous, transition: 'steady', actions: [] };
    const fresh = input.newDeviceId();
    return {
      state: { deviceId: fresh, userTag: undefined },
      transition: 'logout',
      actions: [{ type: 'reset', previousDeviceId: deviceId, deviceId: fresh, reason: 'logout' }],
    };
  }
  if (input.isLinkedUser(userTag, userId)) return { state: previous, transition: 'steady', actions: [] };
  // Another user on a device linked to someone else: never let them inherit it.
  const fresh = input.newDeviceId();
  return {
    state: linked(fresh, userId, input),
    transition: 'switch-user',
    actions: [
      { type: 'reset', previousDeviceId: deviceId, deviceId: fresh, reason: 'switch-user' },
      { type: 'identify', userId, deviceId: fresh },
    ],
  };
}
