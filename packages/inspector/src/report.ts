import type { LocalSink, OutgoingMessage, UnreadableLine } from '@idstitch/core';
import { PROFILE_OPERATIONS, readNdjsonFile } from '@idstitch/core';
import type { QaFinding } from './qa.js';
import { findIdentityIssues } from './qa.js';
import type {
  IdentityOperation,
  IdMergeMode,
  Resolution,
  ResolvedEvent,
  ResolvedProfile,
} from './resolver.js';
import { DEVICE_PREFIX, inferIdMergeMode, resolveIdentities } from './resolver.js';

export interface ReportOptions {
  /** ID Merge API to resolve with. Default: guessed from the messages (see {@link inferIdMergeMode}). */
  mode?: IdMergeMode;
  /** Most IDs per cluster (Original). Default 500, Mixpanel's limit. */
  clusterLimit?: number;
  /** Where the messages came from, shown in the header. */
  source?: string;
  /** 1-based file line of each message, so rows and findings can point into the file. */
  lineNumbers?: readonly number[];
  /** Lines of the source that held no message. */
  unreadable?: readonly UnreadableLine[];
}

/**
 * One event in a user's timeline, in the guides' columns: Event, `$device_id`, `$user_id`, `distinct_id`
 * (set by Mixpanel, with `⇒ resolved` when it changed) and Notes.
 */
export interface TimelineRow {
  /** Position in this timeline, from 1 (the guides number their events the same way). */
  n: number;
  /** Position in the message list. */
  message: number;
  /** 1-based line in the source file, when known. */
  line: number | null;
  event: string;
  deviceId: string | null;
  userId: string | null;
  /** `distinct_id` exactly as sent; `null` when the event carried none. */
  distinctIdSent: string | null;
  /** The distinct_id Mixpanel sets at ingestion. */
  distinctId: string;
  /** The distinct_id the event resolves to once every merge is applied. */
  resolved: string;
  /** `resolved` differs from `distinctId` (shown as `distinctId ⇒ resolved`). */
  changed: boolean;
  /** A later merge changed what the event resolves to ("retroactively updated"). */
  retroactive: boolean;
  notes: string[];
}

/** The events of one identity cluster: a user, or an anonymous visitor nobody identified. */
export interface UserTimeline {
  /** The cluster's canonical distinct_id (the `$user_id` when there is one). */
  distinctId: string;
  anonymous: boolean;
  /** Every ID in the cluster. */
  ids: string[];
  rows: TimelineRow[];
}

export interface ReportCluster {
  id: string;
  ids: string[];
  userIds: string[];
  anonymous: boolean;
  eventCount: number;
  profiles: ResolvedProfile[];
}

/** A message quoted as evidence for a finding. */
export interface ReportEvidence {
  message: number;
  line: number | null;
  description: string;
}

export interface ReportFinding extends QaFinding {
  evidence: ReportEvidence[];
}

/** Everything `idstitch report` shows, as data. {@link formatReportText} and {@link formatReportJson} print it. */
export interface IdentityReport {
  source: string | null;
  mode: IdMergeMode;
  /** True when the mode was guessed from the messages rather than given. */
  modeInferred: boolean;
  totals: {
    messages: number;
    events: number;
    profileUpdates: number;
    groupUpdates: number;
    clusters: number;
    identifiedUsers: number;
    findings: number;
    unreadableLines: number;
  };
  /** One timeline per cluster with events, in order of each cluster's first event. */
  timelines: UserTimeline[];
  clusters: ReportCluster[];
  findings: ReportFinding[];
  unreadable: UnreadableLine[];
}

const REFUSAL_NOTES: Record<string, string> = {
  ignored_in_simplified: 'ignored: Simplified ID Merge does not merge on this event',
  anon_not_uuid_v4: 'not merged: $anon_id is not a UUIDv4',
  cluster_limit: 'not merged: cluster would pass the ID limit',
  missing_ids: 'not merged: IDs missing',
};

function bare(id: string): string {
  return id.startsWith(DEVICE_PREFIX) ? id.slice(DEVICE_PREFIX.length) : id;
}

/** One line saying what an identity operation did, as the report notes it (`links D1 ⇒ U1`, `not linked: …`). */
export function describeOperation(op: IdentityOperation): string {
  const [a, b] = op.ids;
  if (op.outcome === 'merged') {
    switch (op.kind) {
      case 'link':
        return `links ${bare(a)} ⇒ ${b}`;
      case 'identify':
        return `merges ${a} into ${b}`;
      case 'alias':
        return `${a} becomes an alias of ${b}`;
      default:
        return `merges ${a} and ${b}`;
    }
  }
  if (op.outcome === 'unchanged') return `${a} and ${b} already in one cluster`;
  switch (op.reason) {
    case 'device_already_linked':
      return `not linked: ${bare(a)} is already linked to ${op.conflictsWith}`;
    case 'anon_already_merged':
      return `not merged: ${a} is already merged with ${op.conflictsWith}`;
    case 'alias_points_elsewhere':
      return `not merged: ${a} already points at ${op.conflictsWith}`;
    case 'alias_already_merged':
      return `not merged: ${a} is already merged with ${op.conflictsWith}`;
    default:
      return REFUSAL_NOTES[op.reason ?? ''] ?? 'not merged';
  }
}

function rowNotes(event: ResolvedEvent, mode: IdMergeMode): string[] {
  const notes: string[] = [];
  if (event.retroactive) notes.push('retroactively updated');
  if (event.operation) notes.push(describeOperation(event.operation));
  if (mode === 'simplified' && event.distinctIdSent !== null && event.distinctIdSent !== event.distinctId) {
    notes.push(`sent distinct_id ignored for ${event.distinctId}`);
  }
  return notes;
}

function short(value: unknown, max = 80): string {
  const json = JSON.stringify(value) ?? String(value);
  return json.length > max ? `${json.slice(0, max - 1)}…` : json;
}

function describe(message: OutgoingMessage | undefined): string {
  if (message === undefined) return '(missing message)';
  if (message.kind === 'event') {
    const p = message.payload.properties as Record<string, unknown>;
    const fields = [
      'distinct_id',
      '$device_id',
      '$user_id',
      '$anon_id',
      '$identified_id',
      'alias',
      '$distinct_ids',
    ]
      .filter((key) => p[key] !== undefined)
      .map((key) => `${key}=${typeof p[key] === 'string' ? p[key] : short(p[key])}`);
    return `event "${message.payload.event}" ${fields.join(' ')}`.trimEnd();
  }
  const payload = message.payload as unknown as Record<string, unknown>;
  const op = PROFILE_OPERATIONS.find((name) => payload[name] !== undefined) ?? '(no operation)';
  if (message.kind === 'profile')
    return `profile ${op} on ${message.payload.$distinct_id} ${short(payload[op])}`;
  return `group ${op} on ${message.payload.$group_key}=${message.payload.$group_id} ${short(payload[op])}`;
}

/**
 * Resolves a message log and arranges it the way Mixpanel's ID Merge guides do: one timeline per user with
 * the guides' columns, then the clusters and the QA findings. Pure; print it with {@link formatReportText} or
 * {@link formatReportJson}.
 */
export function buildReport(
  messages: readonly OutgoingMessage[],
  options: ReportOptions = {},
): IdentityReport {
  const mode = options.mode ?? inferIdMergeMode(messages);
  const resolution = resolveIdentities(messages, {
    mode,
    ...(options.clusterLimit === undefined ? {} : { clusterLimit: options.clusterLimit }),
  });
  return reportFromResolution(messages, resolution, options);
}

/**
 * {@link buildReport} for messages already resolved (the inspector resolves once and uses both). The mode is
 * the resolution's; `modeInferred` is true when `options.mode` is absent.
 */
export function reportFromResolution(
  messages: readonly OutgoingMessage[],
  resolution: Resolution,
  options: ReportOptions = {},
): IdentityReport {
  const mode = resolution.mode;
  const lineOf = (index: number): number | null => options.lineNumbers?.[index] ?? null;
  const eventsByIndex = new Map(resolution.events.map((event) => [event.index, event]));
  const profilesByKey = new Map(resolution.profiles.map((profile) => [profile.key, profile]));

  const timelines: UserTimeline[] = resolution.clusters
    .filter((cluster) => cluster.events.length > 0)
    .sort((a, b) => (a.events[0] ?? 0) - (b.events[0] ?? 0))
    .map((cluster) => ({
      distinctId: cluster.id,
      anonymous: cluster.anonymous,
      ids: cluster.ids,
      rows: cluster.events.map((index, i) => {
        const event = eventsByIndex.get(index)!;
        return {
          n: i + 1,
          message: index,
          line: lineOf(index),
          event: event.event,
          deviceId: event.deviceId,
          userId: event.userId,
          distinctIdSent: event.distinctIdSent,
          distinctId: event.distinctId,
          resolved: event.resolved,
          changed: event.changed,
          retroactive: event.retroactive,
          notes: rowNotes(event, mode),
        };
      }),
    }));

  const clusters: ReportCluster[] = resolution.clusters.map((cluster) => ({
    id: cluster.id,
    ids: cluster.ids,
    userIds: cluster.userIds,
    anonymous: cluster.anonymous,
    eventCount: cluster.events.length,
    profiles: cluster.profiles.map((key) => profilesByKey.get(key)!),
  }));

  const findings: ReportFinding[] = findIdentityIssues(resolution).map((finding) => ({
    ...finding,
    evidence: finding.messages.map((index) => ({
      message: index,
      line: lineOf(index),
      description: describe(messages[index]),
    })),
  }));

  const profileUpdates = messages.filter((message) => message.kind === 'profile').length;
  return {
    source: options.source ?? null,
    mode,
    modeInferred: options.mode === undefined,
    totals: {
      messages: messages.length,
      events: resolution.events.length,
      profileUpdates,
      groupUpdates: resolution.groupUpdates,
      clusters: clusters.length,
      identifiedUsers: clusters.filter((cluster) => !cluster.anonymous).length,
      findings: findings.length,
      unreadableLines: options.unreadable?.length ?? 0,
    },
    timelines,
    clusters,
    findings,
    unreadable: [...(options.unreadable ?? [])],
  };
}

/** Reads an NDJSON log (as LocalSink writes it) and builds its report. Rejects when the file cannot be read. */
export async function reportFromFile(
  path: string,
  options: Omit<ReportOptions, 'source' | 'lineNumbers' | 'unreadable'> = {},
): Promise<IdentityReport> {
  const { messages, lineNumbers, unreadable } = await readNdjsonFile(path);
  return buildReport(messages, { ...options, source: path, lineNumbers, unreadable });
}

/**
 * Flushes a LocalSink, then resolves its whole file (earlier runs included) with the sink's own `mode`.
 * Replaces `LocalSink.report()`, which moved here with the resolver.
 */
export async function reportFromSink(
  sink: Pick<LocalSink, 'read' | 'mode' | 'path'>,
  options: Pick<ReportOptions, 'clusterLimit'> = {},
): Promise<IdentityReport> {
  const { messages, lineNumbers, unreadable } = await sink.read();
  return buildReport(messages, { ...options, mode: sink.mode, source: sink.path, lineNumbers, unreadable });
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** Renders a pipe table like the guides' tables, padded so columns line up in a terminal. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const cell = (value: string) => value.replaceAll('|', '\\|');
  const all = [header, ...rows].map((row) => row.map(cell));
  const widths = header.map((_, c) => Math.max(...all.map((row) => (row[c] ?? '').length)));
  const line = (row: readonly string[]) => `| ${row.map((v, c) => v.padEnd(widths[c] ?? 0)).join(' | ')} |`;
  return [line(all[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...all.slice(1).map(line)];
}

function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(/\s+/)) {
    if (current !== '' && indent.length + current.length + 1 + word.length > width) {
      lines.push(indent + current);
      current = word;
    } else {
      current = current === '' ? word : `${current} ${word}`;
    }
  }
  if (current !== '') lines.push(indent + current);
  return lines;
}

function listIds(ids: readonly string[], max = 8): string {
  return ids.length <= max
    ? ids.join(', ')
    : `${ids.slice(0, max).join(', ')}, … and ${ids.length - max} more`;
}

/** The resolved-distinct_id cell as the guides write it: `$device:D1 ⇒ U1` when it changed. */
export function resolvedCell(row: Pick<TimelineRow, 'distinctId' | 'resolved' | 'changed'>): string {
  return row.changed ? `${row.distinctId} ⇒ ${row.resolved}` : row.resolved;
}

const EVIDENCE_SHOWN = 5;

/** Prints a report for a terminal: per-user tables in the guides' layout, then clusters and findings. */
export function formatReportText(report: IdentityReport): string {
  const out: string[] = [];
  const t = report.totals;
  out.push(`idstitch identity report${report.source === null ? '' : ` · ${report.source}`}`);
  out.push(
    `ID Merge API: ${report.mode}` +
      (report.modeInferred
        ? ` (guessed from the events; pass --mode ${report.mode === 'simplified' ? 'original' : 'simplified'} if that is wrong)`
        : ''),
  );
  out.push(
    [
      plural(t.events, 'event'),
      plural(t.profileUpdates, 'profile update'),
      plural(t.groupUpdates, 'group update'),
      `${plural(t.identifiedUsers, 'identified user')} in ${plural(t.clusters, 'cluster')}`,
      plural(t.findings, 'finding'),
    ].join(' · '),
  );

  for (const timeline of report.timelines) {
    out.push('');
    const label = timeline.anonymous ? `Anonymous ${timeline.distinctId}` : `User ${timeline.distinctId}`;
    out.push(`${label} · ${plural(timeline.ids.length, 'ID')} · ${plural(timeline.rows.length, 'event')}`);
    out.push(
      ...table(
        ['#', 'Event', '$device_id', '$user_id', 'distinct_id (sent)', 'resolved distinct_id', 'Notes'],
        timeline.rows.map((row) => [
          String(row.n),
          row.event,
          row.deviceId ?? '',
          row.userId ?? '',
          row.distinctIdSent ?? '',
          resolvedCell(row),
          row.notes.join('; '),
        ]),
      ),
    );
  }

  out.push('', 'Clusters');
  if (report.clusters.length === 0) out.push('  (none)');
  for (const cluster of report.clusters) {
    out.push(
      `  ${cluster.id}${cluster.anonymous ? ' (anonymous)' : ''} · ${plural(cluster.ids.length, 'ID')}: ` +
        `${listIds(cluster.ids)} · ${plural(cluster.eventCount, 'event')}`,
    );
    for (const profile of cluster.profiles) {
      const flags = [
        profile.anonymous && 'anonymous',
        profile.orphaned && 'not shown on the user',
        profile.deleted && 'deleted',
      ]
        .filter(Boolean)
        .join(', ');
      out.push(`    profile ${profile.key}${flags ? ` (${flags})` : ''}: ${short(profile.properties, 100)}`);
    }
  }

  out.push(
    '',
    report.findings.length === 0 ? 'QA findings: none' : `QA findings (${report.findings.length})`,
  );
  for (const finding of report.findings) {
    out.push(`  ${finding.severity.toUpperCase().padEnd(7)} ${finding.kind}: ${finding.title}`);
    out.push(...wrap(finding.detail, 110, '          '));
    for (const item of finding.evidence.slice(0, EVIDENCE_SHOWN)) {
      const where = item.line === null ? `message #${item.message + 1}` : `line ${item.line}`;
      out.push(`          · ${where}: ${item.description}`);
    }
    if (finding.evidence.length > EVIDENCE_SHOWN) {
      out.push(`          · … and ${finding.evidence.length - EVIDENCE_SHOWN} more`);
    }
  }

  if (report.unreadable.length > 0) {
    out.push('', `Skipped ${plural(report.unreadable.length, 'unreadable line')}`);
    for (const item of report.unreadable) out.push(`  line ${item.line}: ${item.reason}`);
  }
  return `${out.join('\n')}\n`;
}

/** Prints a report as JSON for machines (stable field names; see {@link IdentityReport}). */
export function formatReportJson(report: IdentityReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
