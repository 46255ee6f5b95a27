import type { OutgoingMessage } from '@idstitch/core';
import type { TimelineRow } from './report.js';
import { resolvedCell } from './report.js';

/**
 * The flow tables of Mixpanel's "Identifying Users (Simplified)" guide, cell for cell, so tests (and the demo's
 * test) can check idstitch's resolution against the documentation rather than against itself. `D1`, `D2`,
 * `U1`, `U2` are placeholders; {@link expectedGuideRows} substitutes real IDs.
 */
export interface GuideRow {
  event: number;
  deviceId: string;
  userId: string | null;
  /** The "distinct_id (set by Mixpanel)" cell, e.g. `$device:D1 ⇒ U1`. */
  distinctId: string;
  notes: string;
}

export interface GuideTable {
  flow: 'New User Signup' | 'Returning User' | 'Multiple Users, One Device';
  /** The guide's sentence introducing the table, shortened. */
  step: string;
  rows: GuideRow[];
}

const row = (
  event: number,
  deviceId: string,
  userId: string | null,
  distinctId: string,
  notes = '',
): GuideRow => ({
  event,
  deviceId,
  userId,
  distinctId,
  notes,
});

/** Every table of the Simplified guide's "Example User Flows", in the guide's order. */
export const SIMPLIFIED_GUIDE_TABLES: readonly GuideTable[] = [
  {
    flow: 'New User Signup',
    step: 'A user lands on a new device and interacts before signing up',
    rows: [row(1, 'D1', null, '$device:D1'), row(2, 'D1', null, '$device:D1')],
  },
  {
    flow: 'New User Signup',
    step: 'The user signs up: identify(U1)',
    rows: [
      row(1, 'D1', null, '$device:D1 ⇒ U1', 'Retroactively updated'),
      row(2, 'D1', null, '$device:D1 ⇒ U1', 'Retroactively updated'),
      row(3, 'D1', 'U1', 'U1', 'Links D1 ⇒ U1, D1 and U1 are inside one ID cluster'),
    ],
  },
  {
    flow: 'Returning User',
    step: 'The user returns on a new device and has not logged in yet',
    rows: [
      row(1, 'D1', null, '$device:D1 ⇒ U1'),
      row(2, 'D1', null, '$device:D1 ⇒ U1'),
      row(3, 'D1', 'U1', 'U1', 'Links D1 ⇒ U1'),
      row(4, 'D2', null, '$device:D2', 'New device D2'),
      row(5, 'D2', null, '$device:D2'),
    ],
  },
  {
    flow: 'Returning User',
    step: 'The user logs in: identify(U1)',
    rows: [
      row(1, 'D1', null, '$device:D1 ⇒ U1'),
      row(2, 'D1', null, '$device:D1 ⇒ U1'),
      row(3, 'D1', 'U1', 'U1', 'Links D1 ⇒ U1'),
      row(4, 'D2', null, '$device:D2 ⇒ U1', 'Retroactively updated'),
      row(5, 'D2', null, '$device:D2 ⇒ U1', 'Retroactively updated'),
      row(6, 'D2', 'U1', 'U1', 'Links D2 ⇒ U1, D1, D2, and U1 are inside one ID cluster'),
    ],
  },
  {
    flow: 'Multiple Users, One Device',
    step: 'A first user begins using a new device',
    rows: [row(1, 'D1', null, '$device:D1')],
  },
  {
    flow: 'Multiple Users, One Device',
    step: 'The user logs in: identify(U1)',
    rows: [
      row(1, 'D1', null, '$device:D1 ⇒ U1', 'Retroactively updated'),
      row(2, 'D1', 'U1', 'U1', 'Links D1 ⇒ U1, D1 and U1 are inside one ID cluster'),
    ],
  },
  {
    flow: 'Multiple Users, One Device',
    step: 'The user logs out, reset() generates D2, a new user tracks events',
    rows: [
      row(1, 'D1', null, '$device:D1 ⇒ U1'),
      row(2, 'D1', 'U1', 'U1', 'Links D1 ⇒ U1'),
      row(3, 'D2', null, '$device:D2', 'Reset generated new ID: D2'),
      row(4, 'D2', null, '$device:D2'),
    ],
  },
  {
    flow: 'Multiple Users, One Device',
    step: 'The new user logs in: identify(U2)',
    rows: [
      row(1, 'D1', null, '$device:D1 ⇒ U1'),
      row(2, 'D1', 'U1', 'U1', 'Links D1 ⇒ U1'),
      row(3, 'D2', null, '$device:D2 ⇒ U2', 'Retroactively updated'),
      row(4, 'D2', null, '$device:D2 ⇒ U2', 'Retroactively updated'),
      // The guide says "D1, D2, and U1 are inside one ID cluster" here, a copy-paste slip: by its own rules D2
      // links to U2, and D1+U1 and D2+U2 are two clusters.
      row(5, 'D2', 'U2', 'U2', 'Links D2 ⇒ U2, D2 and U2 are inside one ID cluster'),
    ],
  },
];

/** Replaces the guide's placeholders (`D1`, `U1`, ...) with real IDs, longest first so `D1` never eats `D10`. */
export function substitute(cell: string, ids: Readonly<Record<string, string>>): string {
  const keys = Object.keys(ids).sort((a, b) => b.length - a.length);
  if (keys.length === 0) return cell;
  const pattern = new RegExp(keys.map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  return cell.replace(pattern, (match) => ids[match] ?? match);
}

/** The messages idstitch's tracker sends for a guide table's rows (Simplified stamping), one event per row. */
export function guideTableMessages(
  table: GuideTable,
  ids: Readonly<Record<string, string>>,
): OutgoingMessage[] {
  return table.rows.map((r) => {
    const deviceId = substitute(r.deviceId, ids);
    const userId = r.userId === null ? null : substitute(r.userId, ids);
    return {
      kind: 'event',
      payload: {
        event: String(r.event),
        properties: {
          distinct_id: userId ?? `$device:${deviceId}`,
          time: 1_700_000_000_000 + r.event * 1000,
          $insert_id: `guide-${r.event}`,
          $device_id: deviceId,
          ...(userId === null ? {} : { $user_id: userId }),
        },
      },
    };
  });
}

/** A table row reduced to what a report row can be compared on. */
export interface ComparableRow {
  deviceId: string;
  userId: string | null;
  /** The guide's "distinct_id (set by Mixpanel)" cell. */
  distinctId: string;
  retroactive: boolean;
  links: string | null;
}

function linkOf(notes: string, ids: Readonly<Record<string, string>>): string | null {
  const match = /^Links (\S+) ⇒ ([^,\s]+)/.exec(notes);
  return match === null ? null : `${substitute(match[1]!, ids)} ⇒ ${substitute(match[2]!, ids)}`;
}

/** The guide's rows with real IDs, in the shape {@link toComparableRow} gives report rows. */
export function expectedGuideRows(table: GuideTable, ids: Readonly<Record<string, string>>): ComparableRow[] {
  return table.rows.map((r) => ({
    deviceId: substitute(r.deviceId, ids),
    userId: r.userId === null ? null : substitute(r.userId, ids),
    distinctId: substitute(r.distinctId, ids),
    // Every arrowed cell in the guide is an event sent before its device was linked.
    retroactive: r.distinctId.includes('⇒'),
    links: linkOf(r.notes, ids),
  }));
}

/**
 * A report row in the guide's terms. `retroactive` is true for every arrowed cell: each one points at a link
 * made after the event, which the guide notes as "Retroactively updated" in the step where it happened.
 */
export function toComparableRow(r: TimelineRow): ComparableRow {
  const link = r.notes.find((note) => note.startsWith('links '));
  return {
    deviceId: r.deviceId ?? '',
    userId: r.userId,
    distinctId: resolvedCell(r),
    retroactive: r.retroactive,
    links: link === undefined ? null : link.slice('links '.length),
  };
}
