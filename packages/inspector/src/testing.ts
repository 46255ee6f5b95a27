/**
 * Mixpanel's Simplified ID Merge guide tables, for checking resolution (and a demo) against the documentation.
 * (Moved here from `@idstitch/core/testing` with the resolver.)
 */
export type { ComparableRow, GuideRow, GuideTable } from './guide-tables.js';
export {
  expectedGuideRows,
  guideTableMessages,
  SIMPLIFIED_GUIDE_TABLES,
  toComparableRow,
} from './guide-tables.js';
