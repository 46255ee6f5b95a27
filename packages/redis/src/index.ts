export type { RedisConnection } from './connection.js';
export type {
  RedisIdentityStoreDropReason,
  RedisIdentityStoreOptions,
  RedisIdentityStoreStats,
} from './identity-store.js';
export { RedisIdentityStore } from './identity-store.js';
export type { InProcessWorkerOptions, RedisOutboxOptions, RedisOutboxStats } from './outbox.js';
export { RedisOutbox } from './outbox.js';
export { OUTBOX_MESSAGE_FIELD, outboxStreamKey } from './outbox-layout.js';
export type { OutboxStreamOptions } from './stream.js';
export type { OutboxWorkerOptions, OutboxWorkerStats } from './worker.js';
export { OutboxWorker } from './worker.js';
