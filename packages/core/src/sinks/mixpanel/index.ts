export type { SpoolFsyncPolicy, SpoolOptions, SpoolStats } from '../spool/types.js';
export type {
  MixpanelMessageOutcome,
  MixpanelSinkEventName,
  MixpanelSinkEvents,
  MixpanelSinkListener,
  MixpanelSinkStats,
} from './events.js';
export type {
  MixpanelClock,
  MixpanelEndpoint,
  MixpanelEventEndpoint,
  MixpanelHost,
  MixpanelOverflowPolicy,
  MixpanelRetryOptions,
  MixpanelSinkOptions,
} from './options.js';
export { MixpanelSink } from './sink.js';
