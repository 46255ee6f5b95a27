import type { IdentityOperation, Resolution, ResolvedEvent } from './resolver.js';
import { DEVICE_PREFIX } from './resolver.js';

/** What a QA finding is about. */
export type QaFindingKind =
  /** A profile update created a profile for an ID that belonged to no known user. */
  | 'anonymous_profile'
  /** One device ID carried events of two or more different users. */
  | 'shared_device'
  /** On one device ID, a user's events were followed by another user's without a new device ID. */
  | 'user_switch_without_reset'
  /** Original: `$identify` with an `$anon_id` that is not a UUIDv4, so nothing merged. */
  | 'identify_anon_not_uuid_v4'
  /** Original: `$identify` with an `$anon_id` already merged with another ID, so nothing merged. */
  | 'identify_anon_already_merged'
  /** Original: `$create_alias` refused by the alias rules. */
  | 'alias_refused'
  /** Original: a merge refused because the cluster would pass the ID limit. */
  | 'merge_refused_cluster_limit'
  /** Original: a cluster within 10% of the ID limit. */
  | 'cluster_near_limit'
  /** An event's `distinct_id` points somewhere other than its `$device_id`/`$user_id`. */
  | 'distinct_id_mismatch'
  /** Simplified: `$identify`/`$create_alias`/`$merge` events, which Simplified ID Merge ignores. */
  | 'identity_event_ignored'
  /** An identity event without the IDs it needs, or an event with no ID at all. */
  | 'missing_ids';

/** One problem in an identity implementation, with the messages that show it. */
export interface QaFinding {
  kind: QaFindingKind;
  /** `error`: data lands on the wrong user or is lost. `warning`: likely a mistake, data still usable. */
  severity: 'error' | 'warning';
  /** One line naming the problem and the IDs involved. */
  title: string;
  /** What it does to the data in Mixpanel, and how to fix it. */
  detail: string;
  /** Positions of the messages that caused it, in message order. */
  messages: number[];
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function quoteList(values: readonly string[]): string {
  if (values.length <= 1) return values.join('');
  return `${values.slice(0, -1).join(', ')} and ${values.at(-1)}`;
}

function anonymousProfiles(resolution: Resolution): QaFinding[] {
  return resolution.profiles
    .filter((profile) => profile.anonymous)
    .map((profile) => ({
      kind: 'anonymous_profile' as const,
      severity: 'warning' as const,
      title: `Profile created for anonymous ID ${profile.key}`,
      detail: profile.orphaned
        ? `${profile.key} was later merged into ${profile.resolved}, but profile properties are not carried ` +
          `over when IDs merge, so ${profile.resolved}'s profile lacks them. Send profile updates only once ` +
          'the user is identified.'
        : `No user is known for ${profile.key}, so it shows as a separate, anonymous profile. Send profile ` +
          'updates only once the user is identified.',
      messages: [...profile.updates],
    }));
}

/** Device → users seen with it (first message of each), from events and, in Original, `$identify`. */
function usersByDevice(resolution: Resolution): Map<string, Map<string, number>> {
  const devices = new Map<string, Map<string, number>>();
  const see = (device: string, user: string, index: number) => {
    const users = devices.get(device) ?? new Map<string, number>();
    devices.set(device, users);
    if (!users.has(user)) users.set(user, index);
  };
  for (const event of resolution.events) {
    if (event.deviceId !== null && event.userId !== null) see(event.deviceId, event.userId, event.index);
    const op = event.operation;
    if (op?.kind === 'identify' && op.ids[0] !== '' && op.ids[1] !== '')
      see(op.ids[0], op.ids[1], event.index);
  }
  return devices;
}

function sharedDevices(resolution: Resolution): QaFinding[] {
  const findings: QaFinding[] = [];
  const simplified = resolution.mode === 'simplified';
  // Simplified: the user each device was linked to, from the one link that succeeded for it.
  const linkedTo = new Map<string, string>();
  for (const op of resolution.operations) {
    if (op.kind === 'link' && op.outcome === 'merged') linkedTo.set(op.ids[0], op.ids[1]);
  }
  for (const [device, users] of usersByDevice(resolution)) {
    if (users.size < 2) continue;
    const names = [...users.keys()];
    const owner = simplified ? linkedTo.get(`${DEVICE_PREFIX}${device}`) : undefined;
    findings.push({
      kind: 'shared_device',
      severity: simplified ? 'error' : 'warning',
      title: `Device ${device} was used by ${quoteList(names)}`,
      detail:
        (owner === undefined
          ? 'Anonymous events on a shared device ID are attributed to whichever user it was merged with. '
          : `Mixpanel linked it to ${owner} only (a device is never re-linked), so anonymous events on it ` +
            `count as ${owner}'s, whoever was using it. `) +
        'Reset on logout so the next person gets a new device ID.',
      messages: [...users.values()].sort((a, b) => a - b),
    });
  }
  return findings;
}

function userSwitches(resolution: Resolution): QaFinding[] {
  const findings: QaFinding[] = [];
  const byDevice = new Map<string, ResolvedEvent[]>();
  for (const event of resolution.events) {
    if (event.deviceId === null) continue;
    const list = byDevice.get(event.deviceId) ?? [];
    byDevice.set(event.deviceId, list);
    list.push(event);
  }
  for (const [device, events] of byDevice) {
    let current: ResolvedEvent | undefined;
    let between: ResolvedEvent[] = [];
    for (const event of events) {
      if (event.userId === null) {
        if (current !== undefined) between.push(event);
        continue;
      }
      if (current !== undefined && current.userId !== event.userId) {
        const landedOn = [...new Set(between.map((e) => e.resolved))];
        findings.push({
          kind: 'user_switch_without_reset',
          severity: 'warning',
          title: `Device ${device} switched from ${current.userId} to ${event.userId} without a reset`,
          detail:
            (between.length === 0
              ? ''
              : between.length === 1
                ? `The anonymous event in between resolves to ${quoteList(landedOn)}. `
                : `The ${between.length} anonymous events in between resolve to ${quoteList(landedOn)}. `) +
            (resolution.mode === 'simplified'
              ? `Rotate the device ID when ${current.userId} signs out (reset) so ${event.userId}'s visit ` +
                'starts on a fresh anonymous ID.'
              : `If ${event.userId} was signing up, reset before sign-up (Mixpanel's advice for Original ` +
                'projects) so the new account starts on a fresh anonymous ID.'),
          messages: [current.index, ...between.map((e) => e.index), event.index],
        });
      }
      current = event;
      between = [];
    }
  }
  return findings;
}

function refusedOperations(resolution: Resolution): QaFinding[] {
  const findings: QaFinding[] = [];
  const ignored = new Map<string, number[]>();
  for (const event of resolution.events) {
    const op: IdentityOperation | undefined = event.operation;
    if (op?.outcome !== 'refused') continue;
    const [first, second] = op.ids;
    switch (op.reason) {
      case 'ignored_in_simplified': {
        const list = ignored.get(event.event) ?? [];
        list.push(event.index);
        ignored.set(event.event, list);
        break;
      }
      case 'anon_not_uuid_v4':
        findings.push({
          kind: 'identify_anon_not_uuid_v4',
          severity: 'error',
          title: `$identify did not merge ${first} into ${second}: $anon_id is not a UUIDv4`,
          detail:
            `Original ID Merge merges only UUIDv4 anonymous IDs, so events sent as ${first} stay a separate ` +
            'anonymous user. Generate device IDs as UUIDv4 (crypto.randomUUID()).',
          messages: [op.index],
        });
        break;
      case 'anon_already_merged':
        findings.push({
          kind: 'identify_anon_already_merged',
          severity: 'warning',
          title: `$identify did not merge ${first} into ${second}: ${first} is already merged with ${op.conflictsWith}`,
          detail:
            `Anonymous events from ${first} count as ${op.conflictsWith}'s. If a different person signed up on ` +
            'this device, reset before sign-up so they start on a fresh anonymous ID.',
          messages: [op.index],
        });
        break;
      case 'alias_points_elsewhere':
      case 'alias_already_merged':
        findings.push({
          kind: 'alias_refused',
          severity: 'error',
          title:
            op.reason === 'alias_points_elsewhere'
              ? `$create_alias did not point ${first} at ${second}: it already points at ${op.conflictsWith}`
              : `$create_alias did not point ${first} at ${second}: ${first} is already merged with ${op.conflictsWith}`,
          detail:
            'An alias can point at one ID only. Events sent as the alias keep resolving to the first target; ' +
            'use $merge to join two users deliberately.',
          messages: [op.index],
        });
        break;
      case 'cluster_limit':
        findings.push({
          kind: 'merge_refused_cluster_limit',
          severity: 'error',
          title: `${event.event} refused: joining ${first} and ${second} would make a cluster of ${op.clusterSize} IDs (limit ${resolution.clusterLimit})`,
          detail:
            'Mixpanel refuses merges past the limit, so these IDs stay separate users. Call reset only when ' +
            'a different person signs up, not on every logout.',
          messages: [op.index],
        });
        break;
      case 'missing_ids':
        findings.push({
          kind: 'missing_ids',
          severity: 'error',
          title: `${event.event} merged nothing: it lacks the IDs it needs`,
          detail:
            '$identify needs $anon_id and $identified_id; $create_alias needs distinct_id and alias; $merge ' +
            'needs exactly two $distinct_ids.',
          messages: [op.index],
        });
        break;
      default:
        // 'device_already_linked' is reported once per device as shared_device, not once per event.
        break;
    }
  }
  for (const [name, indexes] of ignored) {
    findings.push({
      kind: 'identity_event_ignored',
      severity: 'warning',
      title: `${plural(indexes.length, `${name} event`)} ignored: Simplified ID Merge does not merge on ${name}`,
      detail:
        'In Simplified projects the first ordinary event carrying both $device_id and $user_id links them. ' +
        'Check the project really uses Simplified ID Merge, or drop these events.',
      messages: indexes,
    });
  }
  return findings;
}

function clustersNearLimit(resolution: Resolution): QaFinding[] {
  if (resolution.mode !== 'original') return [];
  const threshold = Math.ceil(resolution.clusterLimit * 0.9);
  const findings: QaFinding[] = [];
  for (const cluster of resolution.clusters) {
    if (cluster.ids.length < threshold) continue;
    const members = new Set(cluster.ids);
    findings.push({
      kind: 'cluster_near_limit',
      severity: 'warning',
      title: `Cluster ${cluster.id} holds ${cluster.ids.length} of ${resolution.clusterLimit} IDs`,
      detail:
        `Once it reaches ${resolution.clusterLimit}, further merges into it are refused and new devices stay ` +
        'anonymous. Call reset only when a different person signs up, not on every logout.',
      messages: resolution.operations
        .filter((op) => op.outcome === 'merged' && members.has(op.ids[0]))
        .map((op) => op.index),
    });
  }
  return findings;
}

function distinctIdMismatches(resolution: Resolution): QaFinding[] {
  const simplified = resolution.mode === 'simplified';
  const clusterOf = new Map<string, string>();
  for (const cluster of resolution.clusters) for (const id of cluster.ids) clusterOf.set(id, cluster.id);
  const groups = new Map<string, { sent: string; expected: string; messages: number[] }>();
  for (const event of resolution.events) {
    const sent = event.distinctIdSent;
    if (sent === null) continue;
    let expected: string | null;
    if (simplified) {
      if (event.deviceId === null && event.userId === null) continue;
      expected = event.distinctId;
      if (sent === expected) continue;
    } else {
      // Identity events carry the ID being merged as their distinct_id, not the sender's.
      if (event.operation !== undefined) continue;
      expected = event.userId ?? event.deviceId;
      if (expected === null) continue;
      if ((clusterOf.get(sent) ?? sent) === (clusterOf.get(expected) ?? expected)) continue;
    }
    const key = JSON.stringify([sent, expected]);
    const group = groups.get(key) ?? { sent, expected, messages: [] };
    group.messages.push(event.index);
    groups.set(key, group);
  }
  return [...groups.values()].map(({ sent, expected, messages }) => ({
    kind: 'distinct_id_mismatch' as const,
    severity: simplified ? ('warning' as const) : ('error' as const),
    title: `${plural(messages.length, 'event')} sent distinct_id ${sent} but ${simplified ? 'their IDs say' : 'belong to'} ${expected}`,
    detail: simplified
      ? `Simplified ID Merge ignores the sent distinct_id and uses ${expected}. Send $device_id and $user_id ` +
        'and leave distinct_id out, or set it to $user_id.'
      : `The events count toward ${sent}'s cluster, not ${expected}'s. Send distinct_id equal to the ` +
        'current $user_id (or the device ID before login).',
    messages,
  }));
}

function eventsWithoutIds(resolution: Resolution): QaFinding[] {
  const orphans = resolution.events.filter((event) => event.distinctId === '').map((event) => event.index);
  if (orphans.length === 0) return [];
  return [
    {
      kind: 'missing_ids',
      severity: 'error',
      title: `${plural(orphans.length, 'event')} carried no distinct_id, $device_id or $user_id`,
      detail: 'Mixpanel rejects events it cannot attribute to anyone.',
      messages: orphans,
    },
  ];
}

/**
 * Checks a resolved log for the identity mistakes Mixpanel's guides warn about ("QA your ID management
 * implementation during the development phase"). Findings come errors first, then in order of their first
 * message; each names the messages that caused it.
 */
export function findIdentityIssues(resolution: Resolution): QaFinding[] {
  const findings = [
    ...eventsWithoutIds(resolution),
    ...refusedOperations(resolution),
    ...sharedDevices(resolution),
    ...userSwitches(resolution),
    ...distinctIdMismatches(resolution),
    ...anonymousProfiles(resolution),
    ...clustersNearLimit(resolution),
  ];
  const rank = (finding: QaFinding) => (finding.severity === 'error' ? 0 : 1);
  return findings.sort(
    (a, b) =>
      rank(a) - rank(b) ||
      (a.messages[0] ?? Number.MAX_SAFE_INTEGER) - (b.messages[0] ?? Number.MAX_SAFE_INTEGER),
  );
}
