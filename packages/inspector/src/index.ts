/**
 * `@idstitch/inspector`: developer tooling over what idstitch records. Resolves messages the way Mixpanel's
 * ID Merge does (clusters, retroactive re-attribution, refused links), finds identity mistakes (QA), and
 * builds the report that `idstitch report` prints.
 */
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
