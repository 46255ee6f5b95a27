export type { IdstitchErrorCode } from './errors.js';
export { IdstitchError, IdstitchOptionsError } from './errors.js';
export { INVALID_ID_VALUES, MIXPANEL_LIMITS, RESERVED_EVENT_NAMES } from './messages/limits.js';
export type { SanitizeIssue, SanitizeResult } from './messages/sanitize.js';
export { sanitizeProperties } from './messages/sanitize.js';
export type {
  DropReason,
  EventProperties,
  GroupUpdate,
  JsonValue,
  MixpanelEvent,
  OutgoingMessage,
  ProfileOperation,
  ProfileUpdate,
  Properties,
  Sink,
} from './messages/types.js';
export type { ValidationProblem } from './messages/validate.js';
export {
  isPlaceholderId,
  validateEvent,
  validateGroupUpdate,
  validateMessage,
  validateProfileUpdate,
} from './messages/validate.js';
export type { ConsoleSinkOptions } from './sinks/console-sink.js';
export { ConsoleSink } from './sinks/console-sink.js';
export { MemorySink } from './sinks/memory-sink.js';
