import type { OutgoingMessage } from '../../messages/types.js';
import { JsonChunks } from './chunks.js';
import type { MixpanelEndpoint, ResolvedMixpanelOptions } from './options.js';
import { arrayBytes, PendingQueue, type QueuedMessage } from './queue.js';

/** The queue, timer and concurrency state of one endpoint. */
export interface Lane {
  readonly endpoint: MixpanelEndpoint;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly gzip: boolean;
  readonly pending: PendingQueue;
  /** Where the JSON of this endpoint's queued messages is written, in acceptance order. */
  readonly chunks: JsonChunks;
  /** Batches that own messages (encoding, in flight, or waiting to retry). */
  readonly batches: Set<Batch>;
  /** Concurrency slots in use. The halves of a split batch run inside their parent's slot. */
  slots: number;
  /** Batches waiting out a backoff; while any does, no new batch starts on this endpoint. */
  backingOff: number;
  /** The oldest waiting message has waited a full flush interval. */
  due: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Everything up to this sequence number is to be sent now, because `flush()` asked. */
  flushTarget: number;
  /** After a 401/403, nothing is sent (and new messages are dropped) until then. */
  pausedUntil: number;
}

/** Messages of one endpoint sent together in one request, retried as a whole. */
export interface Batch {
  readonly lane: Lane;
  readonly messages: readonly QueuedMessage[];
  /** Uncompressed size of the JSON array. */
  readonly bytes: number;
  /** Encoded once, so every retry sends the same bytes. */
  body: Uint8Array | undefined;
  attempts: number;
  firstAttemptAt: number | undefined;
  /** False once its messages were counted (delivered or dropped) or handed to the halves of a split. */
  owned: boolean;
}

export type Lanes = Readonly<Record<MixpanelEndpoint, Lane>>;

/** How a log line names what an endpoint carries. */
export const KIND_NOUN = {
  import: 'events',
  track: 'events',
  engage: 'profile updates',
  groups: 'group updates',
} as const;

/** One lane per endpoint, each with its URL, query and headers fixed once. */
export function createLanes(resolved: ResolvedMixpanelOptions): Lanes {
  const lane = (endpoint: MixpanelEndpoint, query: string, compressible: boolean): Lane => {
    const url = new URL(endpoint, resolved.baseUrl);
    url.search = query;
    const compressed = compressible && resolved.compress;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
      'user-agent': 'idstitch',
    };
    if (compressed) headers['content-encoding'] = 'gzip';
    if (endpoint === 'import') headers.authorization = resolved.importAuthorization;
    return {
      endpoint,
      url: url.href,
      headers,
      gzip: compressed,
      pending: new PendingQueue(),
      chunks: new JsonChunks(),
      batches: new Set(),
      slots: 0,
      backingOff: 0,
      due: false,
      timer: undefined,
      flushTarget: 0,
      pausedUntil: 0,
    };
  };
  const importQuery = resolved.projectId ? `strict=1&project_id=${resolved.projectId}` : 'strict=1';
  return {
    import: lane('import', importQuery, true),
    // ip=0: geolocate from the event's `ip` property, never from this server's address.
    track: lane('track', 'verbose=1&ip=0', true),
    // /engage and /groups do not accept gzip.
    engage: lane('engage', 'verbose=1&ip=0', false),
    groups: lane('groups', 'verbose=1', false),
  };
}

/** The lane a message goes to; `undefined` for a `$merge` the credentials cannot send. */
export function laneFor(
  lanes: Lanes,
  options: ResolvedMixpanelOptions,
  message: OutgoingMessage,
): Lane | undefined {
  if (message.kind === 'profile') return lanes.engage;
  if (message.kind === 'group') return lanes.groups;
  if (message.payload.event === '$merge') {
    return options.canMerge ? lanes.import : undefined;
  }
  return lanes[options.eventEndpoint];
}

export function newBatch(lane: Lane, messages: readonly QueuedMessage[]): Batch {
  let itemBytes = 0;
  for (const message of messages) itemBytes += message.bytes;
  const batch: Batch = {
    lane,
    messages,
    bytes: arrayBytes(messages.length, itemBytes),
    body: undefined,
    attempts: 0,
    firstAttemptAt: undefined,
    owned: true,
  };
  // Registered now, not when sent, so a close() deadline finds the second half of a split too.
  lane.batches.add(batch);
  return batch;
}
