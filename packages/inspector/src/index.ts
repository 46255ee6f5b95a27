/**
 * `@idstitch/inspector`: developer tooling over what idstitch records. Resolves messages the way Mixpanel's
 * ID Merge does (clusters, retroactive re-attribution, refused links), finds identity mistakes (QA), and
 * builds the report that `idstitch report` prints; serves the inspector page (`inspector()` middleware,
 * `idstitch inspect`)
 * over a LocalSink file, a delivery spool or a Redis outbox.
 */

export type { AccessCheck, InspectorAccessOptions } from './inspect/access.js';
export type { InspectorHandler, InspectorOptions } from './inspect/handler.js';
export { inspector } from './inspect/handler.js';
export { mergeSources } from './inspect/merge-source.js';
export type { RedisOutboxSourceOptions } from './inspect/redis-source.js';
export { redisOutboxSource } from './inspect/redis-source.js';
export type { InspectorServerOptions, RunningInspector } from './inspect/server.js';
export { startInspector } from './inspect/server.js';
export type { SnapshotOptions } from './inspect/snapshot.js';
export { buildSnapshot } from './inspect/snapshot.js';
export type * from './inspect/snapshot-types.js';
export type { LocalFileSourceOptions, RecordOrigin, RecordSource, SourceRecords } from './inspect/source.js';
export { localFileSource, localSinkSource } from './inspect/source.js';
export type { SpoolSourceOptions } from './inspect/spool-source.js';
export { spoolSource } from './inspect/spool-source.js';
export type { QaFinding, QaFindingKind } from './qa.js';
export { findIdentityIssues } from './qa.js';
export type {
  IdentityReport,
  ReportCluster,
  ReportEvidence,
  ReportFinding,
  ReportOptions,
  TimelineRow,
  UserTimeline,
} from './report.js';
export {
  buildReport,
  formatReportJson,
  formatReportText,
  reportFromFile,
  reportFromSink,
  resolvedCell,
} from './report.js';
export type {
  IdentityCluster,
  IdentityOperation,
  IdentityOperationKind,
  IdMergeMode,
  RefusalReason,
  Resolution,
  ResolvedEvent,
  ResolvedProfile,
  ResolveOptions,
} from './resolver.js';
export { CLUSTER_ID_LIMIT, inferIdMergeMode, resolveIdentities } from './resolver.js';
