/**
 * The web entry point, `@idstitch/core/web`: the engine for runtimes without Node's built-ins (Cloudflare
 * workerd, Deno, Bun, Vercel's edge runtime, and Node too). Nothing reachable from here imports a `node:`
 * module; HMAC, gzip and Buffer-free byte counting pick Node's built-ins at run time only where they exist.
 * Without a `sink`, messages are printed (`ConsoleSink`): there is no local file to record to.
 */
export type { CookieAttributes, CookieWrite } from './cookie/cookie-header.js';
export { cookieValues, serializeCookie } from './cookie/cookie-header.js';
export { DEFAULT_VERIFIED_CACHE } from './cookie/cookie-options.js';
export type { DecodedDeviceCookie, DeviceCookieRejection } from './cookie/device-cookie.js';
export { DeviceCookieCodec } from './cookie/device-cookie.js';
export type { VerifiedCacheBounds } from './cookie/verified-cache.js';
export type { IdstitchEnvironment } from './environment.js';
export type { IdstitchErrorCode } from './errors.js';
export { IdstitchError, IdstitchOptionsError } from './errors.js';
export type {
  HeldProfileUpdate,
  HeldUpdateDropReason,
  IdentityStore,
  MemoryIdentityStoreOptions,
} from './identity/identity-store.js';
export { MemoryIdentityStore } from './identity/identity-store.js';
export { isUuidV4, newDeviceId } from './identity/ids.js';
export type {
  IdentityAction,
  IdentityState,
  IdentityTransition,
  ReconcileInput,
  ReconcileResult,
} from './identity/reconcile.js';
export { reconcileIdentity } from './identity/reconcile.js';
export type { CurrentIdentity } from './identity/request-identity.js';
export type { RequestScope } from './idstitch.js';
export { createPortableIdstitch as createIdstitch, Idstitch } from './idstitch.js';
export {
  INVALID_ID_VALUES,
  MIXPANEL_LIMITS,
  PROFILE_OPERATIONS,
  RESERVED_EVENT_NAMES,
} from './messages/limits.js';
export type { SanitizeIssue, SanitizeResult } from './messages/sanitize.js';
export { IDENTITY_FIELDS, sanitizeProperties } from './messages/sanitize.js';
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
export { DROP_REASONS } from './messages/types.js';
export type { ValidationProblem } from './messages/validate.js';
export {
  isPlaceholderId,
  validateEvent,
  validateGroupUpdate,
  validateMessage,
  validateProfileUpdate,
} from './messages/validate.js';
export type {
  AdapterDefaults,
  ConsentOptions,
  DeviceCookieOptions,
  IdMergeMode,
  IdstitchLogger,
  IdstitchOptions,
  MixpanelBrowserCookieOptions,
  RequestPropertiesOptions,
  ResolvedOptions,
} from './options.js';
export type { RequestPort } from './request-port.js';
export type { ConsoleSinkOptions } from './sinks/console-sink.js';
export { ConsoleSink } from './sinks/console-sink.js';
export { MemorySink } from './sinks/memory-sink.js';
export type * from './sinks/mixpanel/index.js';
export { MixpanelSink } from './sinks/mixpanel/index.js';
export type { PeopleOperations, PropertyInput, TrackEventOptions, Tracker } from './tracker/types.js';
export { LIB_VERSION } from './version.js';
export type { WebRequestFacts } from './web-port.js';
export { webRequestPort } from './web-port.js';
