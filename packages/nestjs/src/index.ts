export type { Idstitch, IdstitchOptions, PropertyInput } from '@idstitch/core';
export {
  defaultResolveUserId,
  IDSTITCH,
  IDSTITCH_OPTIONS,
  IdstitchModule,
  type IdstitchModuleAsyncOptions,
  type IdstitchModuleOptions,
  type IdstitchOptionsFactory,
} from './idstitch.module.js';
export type { IdstitchRequest } from './request-context.js';
export {
  TRACK_METADATA,
  Track,
  type TrackErrorsOptions,
  type TrackMetadata,
  type TrackOptions,
} from './track.decorator.js';
export { CurrentTracker, getTracker, InjectTracker, Tracker, tryGetTracker } from './tracker.provider.js';
