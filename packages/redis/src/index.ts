export type { RedisConnection } from './connection.js';
export type {
  RedisIdentityStoreDropReason,
  RedisIdentityStoreOptions,
  RedisIdentityStoreStats,
} from './identity/options.js';
export { RedisIdentityStore } from './identity/store.js';
export type { InProcessWorkerOptions, RedisOutboxOptions, RedisOutboxStats } from './outbox/options.js';
export { RedisOutbox } from './outbox/outbox.js';
export type { OutboxStreamOptions } from './stream/layout.js';
export { OUTBOX_STREAM_LAYOUT, outboxStreamKey } from './stream/layout.js';
export type { OutboxWorkerOptions, OutboxWorkerStats } from './worker/options.js';
export { OutboxWorker } from './worker/worker.js';
