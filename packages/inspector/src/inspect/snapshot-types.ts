/**
 * What the inspector page is sent: one self-contained JSON snapshot of everything recorded so far, resolved
 * the way Mixpanel's ID Merge would. This file has no imports so the browser bundle can share it.
 */

/** One ID in the identity graph, as a distinct_id value. */
export interface GraphNode {
  /** The distinct_id value (`$device:<id>` for a Simplified device). */
  id: string;
  /** `device`: an anonymous device ID; `user`: a signed-in user's ID; `id`: any other ID (Original mode). */
  kind: 'device' | 'user' | 'id';
  /** The ID without the `$device:` prefix. */
  label: string;
  /** Canonical ID of the cluster holding it. */
  cluster: string;
}

/** An identity operation between two IDs: a link (or merge) Mixpanel made, found made already, or refused. */
export interface GraphLink {
  /** Stable key: the message position. */
  id: string;
  from: string;
  to: string;
  /** `link` (Simplified), `identify`, `alias` or `merge` (Original). */
  kind: string;
  outcome: 'merged' | 'unchanged' | 'refused';
  /** Why Mixpanel would refuse it (a `RefusalReason`), when it would. */
  reason: string | null;
  /** One line saying what happened, e.g. `not linked: D1 is already linked to U1`. */
  explanation: string;
  /** The event that asked for it. */
  message: number;
  line: number | null;
  event: string;
  time: number | null;
}

/** A set of IDs Mixpanel treats as one person. */
export interface SnapshotCluster {
  id: string;
  anonymous: boolean;
  ids: string[];
  userIds: string[];
  eventCount: number;
}

/** One event in a person's timeline. */
export interface TimelineEntry {
  message: number;
  line: number | null;
  event: string;
  time: number | null;
  deviceId: string | null;
  userId: string | null;
  /** `distinct_id` exactly as sent. */
  distinctIdSent: string | null;
  /** The distinct_id Mixpanel sets at ingestion. */
  distinctId: string;
  /** What it resolves to once everything recorded so far has been processed. */
  resolved: string;
  /** A later link changed what it resolves to. */
  retroactive: boolean;
  notes: string[];
  /** Every property except the identity fields, e.g. what enrichment added (`$browser`, `$pathname`, …). */
  properties: Record<string, unknown>;
  /** Positions (in `findings`) of the QA findings that point at this event. */
  findings: number[];
  /**
   * Where the message waits to be delivered (a spool segment, a Redis outbox entry), or `null`: recorded by
   * LocalSink, which delivers nothing. Delivered messages are gone from a spool or an outbox.
   */
  pending: string | null;
  /** Labels of the sources that hold the message. */
  sources: string[];
}

export interface PersonTimeline {
  /** The cluster's canonical distinct_id (the user ID when there is one). */
  cluster: string;
  anonymous: boolean;
  ids: string[];
  entries: TimelineEntry[];
}

/** A message a finding points at. */
export interface FindingEvidence {
  message: number;
  line: number | null;
  description: string;
  /** The cluster whose timeline shows it (events only). */
  cluster: string | null;
}

export interface SnapshotFinding {
  kind: string;
  severity: 'error' | 'warning';
  title: string;
  detail: string;
  evidence: FindingEvidence[];
}

export interface InspectorSnapshot {
  /** Grows with every rebuild, so the page can ignore an older snapshot that arrives late. */
  revision: number;
  /** Where the records came from (the LocalSink file, a spool, an outbox; merged sources joined by ` + `). */
  source: string;
  mode: 'simplified' | 'original';
  modeInferred: boolean;
  /** When this snapshot was built (ms since the epoch). */
  builtAt: number;
  totals: {
    messages: number;
    events: number;
    profileUpdates: number;
    clusters: number;
    identifiedUsers: number;
    findings: number;
    unreadableLines: number;
    /** Messages still waiting for delivery (read from a spool or an outbox). */
    pending: number;
  };
  nodes: GraphNode[];
  links: GraphLink[];
  clusters: SnapshotCluster[];
  people: PersonTimeline[];
  findings: SnapshotFinding[];
  /** Set when the source could not be read (e.g. the file does not exist yet). */
  problem: string | null;
  /** What the sources say: what they cannot show, damage skipped, a merged source that could not be read. */
  notices: string[];
}
