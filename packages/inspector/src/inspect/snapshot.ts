import { describeOperation, reportFromResolution } from '../report.js';
import type { IdMergeMode, ResolvedEvent } from '../resolver.js';
import { DEVICE_PREFIX, inferIdMergeMode, resolveIdentities } from '../resolver.js';
import type {
  GraphLink,
  GraphNode,
  InspectorSnapshot,
  PersonTimeline,
  SnapshotCluster,
  SnapshotFinding,
} from './snapshot-types.js';
import type { SourceRecords } from './source.js';

/** Fields that decide identity; the timeline shows them in their own columns, not among the properties. */
const IDENTITY_FIELDS: ReadonlySet<string> = new Set([
  'distinct_id',
  '$device_id',
  '$user_id',
  'token',
  '$insert_id',
  'time',
]);

export interface SnapshotOptions {
  /** Shown in the header. */
  source: string;
  /** ID Merge API to resolve with. Default: guessed from the messages. */
  mode?: IdMergeMode;
  revision: number;
  /** Set when the records could not be read; the snapshot is then empty. */
  problem?: string | null;
  now?: number;
}

/** Resolves what was recorded and arranges it for the page: graph, clusters, timelines, findings. Pure. */
export function buildSnapshot(records: SourceRecords, options: SnapshotOptions): InspectorSnapshot {
  const { messages, lineNumbers, unreadable, origins } = records;
  const mode = options.mode ?? inferIdMergeMode(messages);
  const resolution = resolveIdentities(messages, { mode });
  const report = reportFromResolution(messages, resolution, {
    ...(options.mode === undefined ? {} : { mode: options.mode }),
    source: options.source,
    lineNumbers,
    unreadable,
  });
  const lineOf = (index: number): number | null => lineNumbers[index] ?? null;
  const eventsByIndex = new Map<number, ResolvedEvent>(resolution.events.map((e) => [e.index, e]));
  const deviceIds = new Set(resolution.events.flatMap((e) => (e.deviceId === null ? [] : [e.deviceId])));

  const clusterOf = new Map<string, string>();
  const clusters: SnapshotCluster[] = resolution.clusters.map((cluster) => {
    for (const id of cluster.ids) clusterOf.set(id, cluster.id);
    return {
      id: cluster.id,
      anonymous: cluster.anonymous,
      ids: cluster.ids,
      userIds: cluster.userIds,
      eventCount: cluster.events.length,
    };
  });
  const nodes: GraphNode[] = resolution.clusters.flatMap((cluster) =>
    cluster.ids.map((id) => {
      const device = id.startsWith(DEVICE_PREFIX);
      const kind: GraphNode['kind'] = cluster.userIds.includes(id)
        ? 'user'
        : device || deviceIds.has(id)
          ? 'device'
          : 'id';
      return { id, kind, label: device ? id.slice(DEVICE_PREFIX.length) : id, cluster: cluster.id };
    }),
  );

  const links: GraphLink[] = resolution.operations
    .filter(
      (op) => op.ids[0] !== '' && op.ids[1] !== '' && clusterOf.has(op.ids[0]) && clusterOf.has(op.ids[1]),
    )
    .map((op) => {
      const event = eventsByIndex.get(op.index);
      return {
        id: `op-${op.index}`,
        from: op.ids[0],
        to: op.ids[1],
        kind: op.kind,
        outcome: op.outcome,
        reason: op.reason ?? null,
        explanation: describeOperation(op),
        message: op.index,
        line: lineOf(op.index),
        event: event?.event ?? '',
        time: event?.time ?? null,
      };
    });

  const findingsOf = new Map<number, number[]>();
  const findings: SnapshotFinding[] = report.findings.map((finding, at) => {
    for (const index of finding.messages) findingsOf.set(index, [...(findingsOf.get(index) ?? []), at]);
    return {
      kind: finding.kind,
      severity: finding.severity,
      title: finding.title,
      detail: finding.detail,
      evidence: finding.evidence.map((evidence) => ({
        ...evidence,
        cluster: eventsByIndex.get(evidence.message)?.resolved ?? null,
      })),
    };
  });

  const people: PersonTimeline[] = report.timelines.map((timeline) => ({
    cluster: timeline.distinctId,
    anonymous: timeline.anonymous,
    ids: timeline.ids,
    entries: timeline.rows.map((row) => {
      const message = messages[row.message];
      const properties: Record<string, unknown> = {};
      if (message?.kind === 'event') {
        for (const [key, value] of Object.entries(message.payload.properties)) {
          if (!IDENTITY_FIELDS.has(key)) properties[key] = value;
        }
      }
      return {
        message: row.message,
        line: row.line,
        event: row.event,
        time: eventsByIndex.get(row.message)?.time ?? null,
        deviceId: row.deviceId,
        userId: row.userId,
        distinctIdSent: row.distinctIdSent,
        distinctId: row.distinctId,
        resolved: row.resolved,
        retroactive: row.retroactive,
        notes: row.notes,
        properties,
        findings: findingsOf.get(row.message) ?? [],
        pending: origins?.[row.message]?.pending ?? null,
        sources: origins?.[row.message]?.sources ?? [options.source],
      };
    }),
  }));

  const t = report.totals;
  return {
    revision: options.revision,
    source: options.source,
    mode,
    modeInferred: options.mode === undefined,
    builtAt: options.now ?? Date.now(),
    totals: {
      messages: t.messages,
      events: t.events,
      profileUpdates: t.profileUpdates,
      clusters: t.clusters,
      identifiedUsers: t.identifiedUsers,
      findings: t.findings,
      unreadableLines: t.unreadableLines,
      pending: origins?.filter((origin) => origin.pending !== null).length ?? 0,
    },
    nodes,
    links,
    clusters,
    people,
    findings,
    problem: options.problem ?? null,
    notices: records.notices ?? [],
  };
}
