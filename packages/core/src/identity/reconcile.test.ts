import { describe, expect, it } from 'vitest';
import { type IdentityState, type ReconcileInput, reconcileIdentity } from './reconcile.js';

/** Tags are `tag(user@device)` so the table reads plainly; fresh devices are D2, D3, ... */
function input(
  previous: IdentityState | undefined,
  userId: string | undefined,
  resetOnLogout = true,
): ReconcileInput {
  let next = 2;
  return {
    previous,
    userId,
    resetOnLogout,
    tagUser: (user, device) => `tag(${user}@${device})`,
    isLinkedUser: (tag, user) => tag.startsWith(`tag(${user}@`),
    newDeviceId: () => `D${next++}`,
  };
}

const anonymous: IdentityState = { deviceId: 'D1', userTag: undefined };
const linkedToU1: IdentityState = { deviceId: 'D1', userTag: 'tag(U1@D1)' };

describe('reconcileIdentity', () => {
  it.each([
    {
      name: 'no state, anonymous: mints a device',
      previous: undefined,
      user: undefined,
      state: { deviceId: 'D2', userTag: undefined },
      transition: 'new-device',
      actions: [],
    },
    {
      name: 'no state, signed in (cookie cleared): mints a device and links it',
      previous: undefined,
      user: 'U1',
      state: { deviceId: 'D2', userTag: 'tag(U1@D2)' },
      transition: 'new-device',
      actions: [{ type: 'identify', userId: 'U1', deviceId: 'D2' }],
    },
    {
      name: 'anonymous stays anonymous',
      previous: anonymous,
      user: undefined,
      state: anonymous,
      transition: 'anonymous',
      actions: [],
    },
    {
      name: 'login links the device to the user',
      previous: anonymous,
      user: 'U1',
      state: linkedToU1,
      transition: 'login',
      actions: [{ type: 'identify', userId: 'U1', deviceId: 'D1' }],
    },
    {
      name: 'same user again is steady',
      previous: linkedToU1,
      user: 'U1',
      state: linkedToU1,
      transition: 'steady',
      actions: [],
    },
    {
      name: 'logout resets to a fresh device',
      previous: linkedToU1,
      user: undefined,
      state: { deviceId: 'D2', userTag: undefined },
      transition: 'logout',
      actions: [{ type: 'reset', previousDeviceId: 'D1', deviceId: 'D2', reason: 'logout' }],
    },
    {
      name: 'user switch resets, then identifies the new user on the fresh device',
      previous: linkedToU1,
      user: 'U2',
      state: { deviceId: 'D2', userTag: 'tag(U2@D2)' },
      transition: 'switch-user',
      actions: [
        { type: 'reset', previousDeviceId: 'D1', deviceId: 'D2', reason: 'switch-user' },
        { type: 'identify', userId: 'U2', deviceId: 'D2' },
      ],
    },
  ])('$name', ({ previous, user, state, transition, actions }) => {
    expect(reconcileIdentity(input(previous, user))).toEqual({ state, transition, actions });
  });

  it('keeps the linked device on logout when resetOnLogout is false (Original ID Merge default)', () => {
    expect(reconcileIdentity(input(linkedToU1, undefined, false))).toEqual({
      state: linkedToU1,
      transition: 'steady',
      actions: [],
    });
  });

  it('still protects a device from a different user when resetOnLogout is false', () => {
    const result = reconcileIdentity(input(linkedToU1, 'U2', false));
    expect(result.transition).toBe('switch-user');
    expect(result.state.deviceId).not.toBe('D1');
  });

  it('is deterministic: the same input gives the same output', () => {
    expect(reconcileIdentity(input(anonymous, 'U9'))).toEqual(reconcileIdentity(input(anonymous, 'U9')));
  });
});
