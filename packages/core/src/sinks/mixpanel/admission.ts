import { IdstitchError } from '../../errors.js';
import { MIXPANEL_LIMITS } from '../../messages/limits.js';
import type { OutgoingMessage } from '../../messages/types.js';
import { validateUnlessValidated } from '../../messages/validate.js';
import type { Accounting } from './accounting.js';
import { ChunkedMessage } from './chunks.js';
import type { MixpanelMessageOutcome } from './events.js';
import { type Lane, type Lanes, laneFor } from './lane.js';
import type { ResolvedMixpanelOptions } from './options.js';
import type { QueuedMessage } from './queue.js';
import type { Spooling } from './spooling.js';

/** Whether the sink takes messages (`open`, `closing`) and sends them (`open`, `closing`). */
export type SinkState = 'open' | 'closing' | 'closed';

type Settled = ((outcome: MixpanelMessageOutcome) => void) | undefined;

/**
 * The way in: validates a message, picks its lane, serialises it once with the project token, and
 * queues it within the memory budget (applying the overflow policy when the budget is used up).
 */
export class Admission {
  readonly #options: ResolvedMixpanelOptions;
  readonly #lanes: Lanes;
  readonly #accounts: Accounting;
  readonly #state: () => SinkState;
  readonly #queued: (lane: Lane) => void;
  /** The project token as a JSON string, spliced into every serialised event. */
  readonly #tokenJson: string;
  /** `"token":…}}` and `,"token":…}}` in UTF-8, written in place of an event's closing `}}`. */
  readonly #tokenSuffix: Uint8Array;
  readonly #commaTokenSuffix: Uint8Array;
  #afterCloseReported = false;
  /** Set when a spool is configured. */
  spooling: Spooling | undefined;

  /** `queued` is called after a message joins a lane, to start a batch if one is ready. */
  constructor(
    options: ResolvedMixpanelOptions,
    lanes: Lanes,
    accounts: Accounting,
    state: () => SinkState,
    queued: (lane: Lane) => void,
  ) {
    this.#options = options;
    this.#lanes = lanes;
    this.#accounts = accounts;
    this.#state = state;
    this.#queued = queued;
    this.#tokenJson = JSON.stringify(options.token);
    this.#tokenSuffix = encoder.encode(`"token":${this.#tokenJson}}}`);
    this.#commaTokenSuffix = encoder.encode(`,"token":${this.#tokenJson}}}`);
  }

  /** Counts the message as tracked and queues it, or drops it with a reason. Never throws. */
  write(message: OutgoingMessage, settled: Settled): void {
    this.#accounts.tracked += 1;
    try {
      this.#accept(message, settled);
    } catch (error) {
      // Only serialising can throw (a getter, a BigInt the producer let through); nothing was queued.
      this.#accounts.dropNew('invalid', undefined, settled);
      this.#accounts.report(
        new IdstitchError(
          'invalid_message',
          `a ${describeKind(message)} could not be serialised and was dropped`,
          {
            cause: error,
            details: { kind: safeKind(message) },
          },
        ),
      );
    }
  }

  #accept(message: OutgoingMessage, settled: Settled): void {
    const accounts = this.#accounts;
    const now = this.#options.clock.now();
    if (this.#state() === 'closed') {
      accounts.dropNew('after_close', undefined, settled);
      if (!this.#afterCloseReported) {
        this.#afterCloseReported = true;
        accounts.report(
          new IdstitchError(
            'after_close',
            `a ${describeKind(message)} was written after the Mixpanel sink was closed and was dropped; ` +
              'later ones are only counted in stats().dropped.after_close',
            { details: { kind: safeKind(message) } },
          ),
        );
      }
      return;
    }
    const problem = validateUnlessValidated(message, now);
    if (problem) {
      accounts.dropNew('invalid', undefined, settled);
      accounts.report(
        new IdstitchError(
          'invalid_message',
          `${describeKind(message)} dropped before sending: ${problem.field}: ${problem.message}`,
          { details: { kind: safeKind(message), field: problem.field, problem: problem.message } },
        ),
      );
      return;
    }
    const lane = laneFor(this.#lanes, this.#options, message);
    if (lane === undefined) {
      accounts.dropNew('invalid', 'import', settled);
      accounts.report(
        new IdstitchError(
          'invalid_message',
          '$merge event dropped: Mixpanel accepts $merge only on /import with a service account or the API ' +
            'secret; pass serviceAccount + projectId (or apiSecret) to MixpanelSink',
          { details: { kind: 'event', event: '$merge' } },
        ),
      );
      return;
    }
    if (lane.pausedUntil > now) {
      // Credentials were refused and already reported; sending would only be refused again.
      accounts.dropNew('rejected', lane.endpoint, settled, 'unauthorized');
      return;
    }
    // With drop_newest and every message slot taken, nothing written now can be queued, whatever its size:
    // drop it before paying for serialisation, so that a long outage costs the app as little as possible.
    // The same when the bytes left in the budget are fewer than the message will take at least: under a long
    // outage the byte budget is what fills, and serialising every event only to drop it doubled the cost of a
    // tracked event (and its garbage) for as long as the outage lasted.
    if (
      !this.spooling &&
      this.#options.overflow === 'drop_newest' &&
      (accounts.queued >= this.#options.maxQueueMessages || this.#cannotFit(message))
    ) {
      accounts.startOverflow();
      accounts.dropNew('queue_overflow', lane.endpoint, settled);
      return;
    }
    // Without a spool, the JSON goes straight into the lane's chunk (see ChunkedMessage); the spool journals strings.
    let bytes = this.spooling ? -1 : this.#writeChunked(lane, message);
    const json = bytes < 0 ? this.#serialize(message) : undefined;
    if (json !== undefined) bytes = utf8Length(json);
    const limit = Math.min(MIXPANEL_LIMITS.maxMessageBytes, this.#options.maxBatchBytes - 2);
    if (bytes > limit) {
      accounts.dropNew('invalid', lane.endpoint, settled);
      accounts.report(
        new IdstitchError(
          'message_too_large',
          `${describeKind(message)} dropped before sending: ${bytes} bytes serialised, the limit is ${limit}`,
          { details: { kind: message.kind, bytes, limit } },
        ),
      );
      return;
    }
    const insertId = message.kind === 'event' ? message.payload.properties.$insert_id : undefined;
    const spooled =
      json === undefined ? undefined : this.spooling?.take(lane, json, bytes, settled, insertId);
    if (spooled === 'spooled') return;
    if (!this.#makeRoom(bytes)) {
      accounts.dropNew('queue_overflow', lane.endpoint, settled);
      return;
    }
    const seq = accounts.enqueue(bytes);
    if (json === undefined) {
      const { chunks } = lane;
      chunks.commit();
      lane.pending.push(
        new ChunkedMessage(seq, chunks.chunk, chunks.start, bytes, insertId, settled, spooled),
      );
    } else {
      lane.pending.push({ seq, json, bytes, insertId, settled, spoolId: spooled });
    }
    this.#queued(lane);
  }

  /**
   * Serialises the message into its lane's chunk, tentatively (kept only once `commit()`ed), and returns its
   * UTF-8 length; -1 when it was not written there (no Buffer, a large message). The same bytes as
   * `#serialize`: an event's token is written after its JSON, in place of the closing `}}`.
   */
  #writeChunked(lane: Lane, message: OutgoingMessage): number {
    if (message.kind === 'event') {
      const { event, properties } = message.payload;
      if (!Object.hasOwn(properties, 'token') && (properties as { toJSON?: unknown }).toJSON === undefined) {
        const json = JSON.stringify({ event, properties });
        // `{"event":…,"properties":{…}}`: the character before the closing `}}` is `{` only with no properties.
        const suffix = json.charCodeAt(json.length - 3) === 123 ? this.#tokenSuffix : this.#commaTokenSuffix;
        return lane.chunks.write(json, 2, suffix);
      }
    }
    return lane.chunks.write(this.#serialize(message));
  }

  #serialize(message: OutgoingMessage): string {
    const token = this.#options.token;
    if (message.kind === 'event') {
      const { event, properties } = message.payload;
      if (Object.hasOwn(properties, 'token') || (properties as { toJSON?: unknown }).toJSON !== undefined) {
        return JSON.stringify({ event, properties: { ...properties, token } });
      }
      // The same bytes as `{ ...properties, token }` (token last), without copying every property once more for
      // each event: the copy cost as much as the serialisation itself. `{"event":…,"properties":{…}}` ends in
      // `}}`, and the character before them is `{` only when there are no properties.
      const json = JSON.stringify({ event, properties });
      const comma = json.charCodeAt(json.length - 3) === 123 ? '' : ',';
      return `${json.slice(0, -2)}${comma}"token":${this.#tokenJson}}}`;
    }
    return JSON.stringify({ ...message.payload, $token: token });
  }

  /**
   * A lower bound of the UTF-8 bytes `#serialize` will produce for an event, found without serialising it:
   * the fixed frame, the event name and token, and for every property whose value is a string, number, boolean
   * or null (the ones JSON always writes) its quoted key, a colon, a comma and the fewest bytes the value can
   * take. A UTF-8 string is never shorter than its UTF-16 length, escapes only add. Other values count nothing
   * (a `toJSON` may omit them). 0 for profile and group updates, which are rare enough to serialise.
   */
  #minimumBytes(message: OutgoingMessage): number {
    if (message.kind !== 'event') return 0;
    const { event, properties } = message.payload;
    // `{"event":"","properties":{"token":}}` is 36 bytes.
    let bytes = 36 + event.length + this.#tokenJson.length;
    // Own keys only, as JSON writes them; `token` is written once, as the project's.
    for (const key of Object.keys(properties)) {
      if (key === 'token') continue;
      const value = properties[key];
      const type = typeof value;
      if (type === 'string') bytes += (value as string).length + 2;
      else if (type === 'number') bytes += 1;
      else if (type === 'boolean' || value === null) bytes += 4;
      else continue;
      bytes += key.length + 4;
    }
    return bytes;
  }

  /**
   * True when the byte budget has no room for this message whatever it serialises to. Looked at only when
   * fewer bytes are left than the largest message Mixpanel accepts, so that a queue with room pays nothing.
   */
  #cannotFit(message: OutgoingMessage): boolean {
    const room = this.#options.maxQueueBytes - this.#accounts.queuedBytes;
    return room < MIXPANEL_LIMITS.maxMessageBytes && this.#minimumBytes(message) > room;
  }

  /** Applies the overflow policy; true when the new message fits. */
  #makeRoom(bytes: number): boolean {
    const accounts = this.#accounts;
    const { maxQueueMessages, maxQueueBytes, overflow } = this.#options;
    if (accounts.queued < maxQueueMessages && accounts.queuedBytes + bytes <= maxQueueBytes) return true;
    const fits = () => accounts.queued < maxQueueMessages && accounts.queuedBytes + bytes <= maxQueueBytes;
    accounts.startOverflow();
    if (overflow === 'drop_oldest') {
      while (!fits()) {
        // Only waiting messages can go; those in flight may already be ingested.
        let oldest: Lane | undefined;
        for (const lane of Object.values(this.#lanes)) {
          const head = lane.pending.peek();
          if (head && (!oldest || head.seq < (oldest.pending.peek() as QueuedMessage).seq)) oldest = lane;
        }
        if (!oldest) return false;
        accounts.settle([oldest.pending.shift() as QueuedMessage], 'queue_overflow', oldest.endpoint);
      }
      return true;
    }
    return false;
  }
}

/** A message's `kind`, safe to log whatever the caller passed. */
export function safeKind(message: unknown): string {
  const kind = (message as { kind?: unknown } | null)?.kind;
  return typeof kind === 'string' ? kind.slice(0, 20) : typeof message;
}

/** `event "Signed Up"`, `profile update`, ... for error messages. */
export function describeKind(message: unknown): string {
  const kind = safeKind(message);
  if (kind === 'profile') return 'profile update';
  if (kind === 'group') return 'group update';
  if (kind === 'event') {
    const name = (message as { payload?: { event?: unknown } }).payload?.event;
    return typeof name === 'string' ? `event "${name.slice(0, 80)}"` : 'event';
  }
  return 'message';
}

const encoder = new TextEncoder();
const nodeBuffer = (globalThis as { Buffer?: { byteLength(text: string, encoding: 'utf8'): number } }).Buffer;

/** UTF-8 length of `text`: Node's Buffer where there is one (no copy), else an encoded copy (workerd). */
function utf8Length(text: string): number {
  return nodeBuffer ? nodeBuffer.byteLength(text, 'utf8') : encoder.encode(text).byteLength;
}
