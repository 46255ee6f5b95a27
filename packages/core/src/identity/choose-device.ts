import type { IdentityState } from './reconcile.js';

/**
 * Which of several genuine device cookies is this browser's own. A cookie that verifies is not necessarily the
 * visitor's: a cookie set for a parent domain or a longer path by someone else (a sibling subdomain, an attacker's
 * own visit) is sent alongside, often first. Picking the stranger's would link their device to the visitor at
 * login and apply their held anonymous profile updates to the visitor's profile.
 *
 * The rule, pure: one device among the values → that device (a value whose tag names the signed-in user
 * preferred). Several devices → the one whose user tag was made for the signed-in user, when exactly one device
 * has such a tag; otherwise none (`undefined`): the caller mints a fresh device, which has no history and no held
 * updates to carry across the ambiguity.
 */
export function chooseDevice(
  candidates: readonly IdentityState[],
  userId: string | undefined,
  isTagOf: (userTag: string, userId: string, deviceId: string) => boolean,
): { state: IdentityState | undefined; ambiguous: boolean } {
  const matching =
    userId === undefined
      ? []
      : candidates.filter(
          (candidate) =>
            candidate.userTag !== undefined && isTagOf(candidate.userTag, userId, candidate.deviceId),
        );
  const devices = new Set(candidates.map((candidate) => candidate.deviceId));
  if (devices.size <= 1) return { state: matching[0] ?? candidates[0], ambiguous: false };
  const matchedDevices = new Set(matching.map((candidate) => candidate.deviceId));
  if (matchedDevices.size === 1) return { state: matching[0], ambiguous: false };
  return { state: undefined, ambiguous: true };
}
