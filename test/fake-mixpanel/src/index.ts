/**
 * A fake Mixpanel ingestion API on a real loopback port: the documented contract of `/import`,
 * `/track`, `/engage` and `/groups` (auth, strict validation with `failed_records`, `1`/`0` and
 * verbose bodies, 413 over the limits, gzip bodies, dedup by `$insert_id`), plus programmable faults
 * (status sequences, `Retry-After`, stalls, resets, hangs, going down and coming back).
 *
 * For tests and benchmarks only. See README.md for the API.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { gunzip as gunzipCallback } from 'node:zlib';
import {
  applyOperation,
  checkGroupUpdate,
  checkImportEvent,
  checkProfileUpdate,
  checkTrackEvent,
  isObject,
  type JsonObject,
  type Problem,
  TRACK_MAX_AGE_MS,
  timeMs,
} from './contract.js';

export type { Json, JsonObject } from './contract.js';

const gunzip = promisify(gunzipCallback);

/** The ingestion endpoints the fake serves (the last path segment, so a proxy prefix is fine). */
export type FakeEndpoint = 'import' | 'track' | 'engage' | 'groups';

/** One programmable fault, applied to one request instead of (or around) the normal handling. */
export type FakeFault =
  /** Answer with this status (nothing is ingested). Default bodies mimic Mixpanel's for 401/403/413/429. */
  | {
      kind: 'status';
      status: number;
      body?: string | object;
      /** Sent as the `Retry-After` header: seconds, or an HTTP date string. */
      retryAfter?: number | string;
      headers?: Record<string, string>;
    }
  /**
   * Handle the request normally, except that `/import` refuses the events with these `$insert_id`s as
   * invalid (strict mode: 400 with `failed_records`, the rest ingested). `key` overrides the option
   * `failedRecordsKey`; `withIndex: false` leaves `index` out of each record.
   */
  | {
      kind: 'refuse';
      insertIds: readonly string[];
      field?: string;
      message?: string;
      key?: 'insert_id' | '$insert_id';
      withIndex?: boolean;
    }
  /** Read the request, ingest nothing, and destroy the socket without answering. */
  | { kind: 'reset' }
  /** Ingest the request, then send the headers and half the body and destroy the socket: the ack is lost. */
  | { kind: 'resetMidResponse' }
  /** Wait `ms`, then handle the request normally (ingesting it even if the client gave up meanwhile). */
  | { kind: 'delay'; ms: number }
  /** Never answer; the connection stays open until the client gives up or the fake closes. */
  | { kind: 'hang' };

/** A fault queued with {@link FakeMixpanel.fail}, optionally only for one endpoint. */
export type ScriptedFault = FakeFault & { endpoint?: FakeEndpoint };

/** What a fault policy sees about each request. */
export interface FakeRequestInfo {
  /** 0 for the first request the fake received. */
  index: number;
  endpoint: FakeEndpoint | undefined;
  path: string;
  query: Readonly<Record<string, string>>;
}

/** Every request the fake received, faulted or not. */
export interface RecordedRequest {
  index: number;
  endpoint: FakeEndpoint | undefined;
  method: string;
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  /** The request body was gzip'd. */
  gzip: boolean;
  /** The body as received, after gunzip (empty when `recordBodies` is off or the fault came first). */
  body: Buffer;
  /** The fault applied, if any. */
  fault: FakeFault['kind'] | undefined;
  /** Status sent; undefined when the fake reset or hung. */
  status: number | undefined;
  /** Response body sent. */
  response: string | undefined;
}

/** One accepted event (the latest copy when duplicates arrived). */
export interface StoredEvent {
  event: string;
  properties: JsonObject;
  endpoint: 'import' | 'track';
}

/** One accepted `/engage` or `/groups` update, with the `ip` query parameter of its request. */
export interface StoredUpdate {
  update: JsonObject;
  /** The request's `ip` query parameter (`'0'`: do not geolocate from the request address). */
  ipParam: string | undefined;
}

export interface FakeMixpanelOptions {
  /** Project token expected in `/track`, `/engage` and `/groups` payloads. Default `'fake-token'`. */
  token?: string;
  /** Service account accepted on `/import` (requires `project_id=projectId`). */
  serviceAccount?: { username: string; secret: string };
  projectId?: string | number;
  /** API secret accepted on `/import` as Basic `secret:`. */
  apiSecret?: string;
  /** Accept the project token as Basic `token:` on `/import`. Default true (Mixpanel does). */
  acceptTokenForImport?: boolean;
  /** Key naming the record in `failed_records`: the OpenAPI spec says `insert_id`, the prose `$insert_id`. */
  failedRecordsKey?: 'insert_id' | '$insert_id';
  /** Events or updates per request before 413. Default 2000. */
  maxBatchMessages?: number;
  /** Uncompressed bytes per request before 413. Default 2 MiB. */
  maxBodyBytes?: number;
  /** Clock for the time-window rules. Default `Date.now`. */
  now?: () => number;
  /** Keep request bodies in `requests` (turn off for long benchmarks). Default true. */
  recordBodies?: boolean;
  /** Port to listen on. Default 0 (any free port). */
  port?: number;
}

/** Counters beyond the stored data. */
export interface FakeMixpanelCounters {
  /** Events received again with the same dedup key (event, distinct_id, time, $insert_id). */
  duplicates: number;
  /** `/track` events older than 5 days: answered as success, never stored (as Mixpanel does). */
  silentlyDropped: number;
  /** Records refused by validation. */
  invalid: number;
}

/** A running fake. Every list is live: it grows as requests arrive. */
export interface FakeMixpanel {
  /** Base URL, e.g. `http://127.0.0.1:41234`; pass it as the sink's `host`. */
  readonly url: string;
  readonly port: number;
  /** Accepted events, deduplicated, in order of first arrival. */
  readonly events: readonly StoredEvent[];
  /** Accepted `/engage` updates, in order. */
  readonly profiles: readonly StoredUpdate[];
  /** Accepted `/groups` updates, in order. */
  readonly groups: readonly StoredUpdate[];
  /** Every request received. */
  readonly requests: readonly RecordedRequest[];
  readonly counters: Readonly<FakeMixpanelCounters>;
  /** The `$insert_id`s of the accepted events. */
  insertIds(): Set<string>;
  /** A user profile's properties after every update so far; undefined if none or deleted. */
  profileState(distinctId: string): JsonObject | undefined;
  /** A group profile's properties after every update so far. */
  groupState(groupKey: string, groupId: string): JsonObject | undefined;
  /** Queues faults; each is used by the next request (for its endpoint, if given), in order. */
  fail(...faults: ScriptedFault[]): void;
  /** Faults still queued. */
  readonly pendingFaults: number;
  /** Decides a fault for requests that no queued fault matched; `undefined` removes the policy. */
  setFaultPolicy(policy: ((request: FakeRequestInfo) => FakeFault | undefined) | undefined): void;
  /** Resolves once at least `count` requests have arrived in total (bodies read, before any answer). */
  waitForRequests(count: number): Promise<void>;
  /** Stops listening and drops every connection: clients see connection refused. */
  goDown(): Promise<void>;
  /** Listens again on the same port. */
  comeBack(): Promise<void>;
  /** Forgets all stored data, requests, counters and faults. */
  clear(): void;
  close(): Promise<void>;
}

const ENDPOINTS: ReadonlySet<string> = new Set(['import', 'track', 'engage', 'groups']);
/** Bodies beyond this are refused before decoding, so a runaway client cannot exhaust the test's memory. */
const HARD_BODY_CAP = 64 * 1024 * 1024;

interface Reply {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

function json(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return { status, body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } };
}

function defaultFaultBody(status: number): unknown {
  const text = http.STATUS_CODES[status] ?? 'Error';
  switch (status) {
    case 401:
      return { code: 401, error: 'Invalid credentials', status: 'Unauthorized' };
    case 413:
      return {
        code: 413,
        error: 'request exceeds max limit of 2097152 bytes',
        status: 'Request Entity Too Large',
      };
    case 429:
      return {
        code: 429,
        error: 'Project exceeded rate limits. Please retry the request with exponential backoff.',
        status: 'Too Many Requests',
      };
    default:
      return { code: status, error: text, status: text };
  }
}

class FakeMixpanelServer implements FakeMixpanel {
  readonly events: StoredEvent[] = [];
  readonly profiles: StoredUpdate[] = [];
  readonly groups: StoredUpdate[] = [];
  readonly requests: RecordedRequest[] = [];
  readonly counters: FakeMixpanelCounters = { duplicates: 0, silentlyDropped: 0, invalid: 0 };
  port = 0;
  private readonly server: http.Server;
  private readonly byKey = new Map<string, number>();
  private readonly profileStates = new Map<string, JsonObject>();
  private readonly groupStates = new Map<string, JsonObject>();
  private faults: ScriptedFault[] = [];
  private policy: ((request: FakeRequestInfo) => FakeFault | undefined) | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private waiters: { count: number; resolve: () => void }[] = [];
  private readonly token: string;
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly options: FakeMixpanelOptions) {
    this.token = options.token ?? 'fake-token';
    this.now = options.now ?? Date.now;
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent && !res.destroyed) res.writeHead(500).end();
      });
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pendingFaults(): number {
    return this.faults.length;
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        this.port = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  insertIds(): Set<string> {
    return new Set(this.events.map((event) => String(event.properties.$insert_id)));
  }

  profileState(distinctId: string): JsonObject | undefined {
    return this.profileStates.get(distinctId);
  }

  groupState(groupKey: string, groupId: string): JsonObject | undefined {
    return this.groupStates.get(`${groupKey}\u0000${groupId}`);
  }

  fail(...faults: ScriptedFault[]): void {
    this.faults.push(...faults);
  }

  setFaultPolicy(policy: ((request: FakeRequestInfo) => FakeFault | undefined) | undefined): void {
    this.policy = policy;
  }

  waitForRequests(count: number): Promise<void> {
    if (this.requests.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  async goDown(): Promise<void> {
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closing;
  }

  async comeBack(): Promise<void> {
    if (!this.server.listening) await this.listen(this.port);
  }

  clear(): void {
    this.events.length = 0;
    this.profiles.length = 0;
    this.groups.length = 0;
    this.requests.length = 0;
    this.byKey.clear();
    this.profileStates.clear();
    this.groupStates.clear();
    this.faults = [];
    this.policy = undefined;
    Object.assign(this.counters, { duplicates: 0, silentlyDropped: 0, invalid: 0 });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (this.server.listening) await this.goDown();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }

  private takeFault(info: FakeRequestInfo): FakeFault | undefined {
    const index = this.faults.findIndex((fault) => !fault.endpoint || fault.endpoint === info.endpoint);
    if (index >= 0) return this.faults.splice(index, 1)[0];
    return this.policy?.(info);
  }

  private async readBody(req: http.IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > HARD_BODY_CAP) throw new Error('body over the hard cap');
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // Mixpanel's browser endpoints answer CORS with credentials (mixpanel-browser's XHR sets
    // withCredentials), so a page on another origin can read the verbose reply.
    const origin = req.headers.origin;
    if (typeof origin === 'string') {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('vary', 'Origin');
      if (req.method === 'OPTIONS') {
        res.writeHead(204, {
          'access-control-allow-methods': 'GET, POST, OPTIONS',
          'access-control-allow-headers': String(req.headers['access-control-request-headers'] ?? ''),
          'access-control-max-age': '600',
        });
        res.end();
        return;
      }
    }
    const url = new URL(req.url ?? '/', 'http://fake.invalid');
    const segment = url.pathname.split('/').filter(Boolean).at(-1) ?? '';
    const endpoint = ENDPOINTS.has(segment) ? (segment as FakeEndpoint) : undefined;
    const query = Object.fromEntries(url.searchParams);
    const gzip = /gzip/i.test(String(req.headers['content-encoding'] ?? ''));
    // The body is read before anything else, so a recorded request is always complete.
    let raw: Buffer | undefined;
    try {
      raw = await this.readBody(req);
      if (gzip) raw = await gunzip(raw);
    } catch {
      raw = undefined;
    }
    const record: RecordedRequest = {
      index: this.requests.length,
      endpoint,
      method: req.method ?? 'GET',
      path: url.pathname,
      query,
      headers: req.headers,
      gzip,
      body: raw && this.options.recordBodies !== false ? raw : Buffer.alloc(0),
      fault: undefined,
      status: undefined,
      response: undefined,
    };
    this.requests.push(record);
    this.waiters = this.waiters.filter((waiter) => {
      if (this.requests.length < waiter.count) return true;
      waiter.resolve();
      return false;
    });

    const fault = this.takeFault({ index: record.index, endpoint, path: url.pathname, query });
    record.fault = fault?.kind;
    if (fault?.kind === 'hang') return;
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'delay') {
      await this.sleep(fault.ms);
      if (this.closed || res.destroyed) return;
    }
    if (fault?.kind === 'status') {
      const body = fault.body ?? defaultFaultBody(fault.status);
      const headers: Record<string, string> = { ...fault.headers };
      if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
      this.send(res, record, {
        status: fault.status,
        body: typeof body === 'string' ? body : JSON.stringify(body),
        headers: { 'content-type': 'application/json', ...headers },
      });
      return;
    }
    if (!raw) {
      this.send(res, record, json(400, { error: 'unreadable body', status: 0 }));
      return;
    }

    const reply = this.process(endpoint, req, record, raw, fault?.kind === 'refuse' ? fault : undefined);
    if (fault?.kind === 'resetMidResponse') {
      res.writeHead(reply.status, {
        ...reply.headers,
        'content-length': String(Buffer.byteLength(reply.body)),
      });
      const half = reply.body.slice(0, Math.floor(reply.body.length / 2));
      if (half) res.write(half);
      else res.flushHeaders();
      // Let the partial response reach the client before the reset, so the failure is mid-body.
      setImmediate(() => req.socket.destroy());
      return;
    }
    this.send(res, record, reply);
  }

  private send(res: http.ServerResponse, record: RecordedRequest, reply: Reply): void {
    record.status = reply.status;
    record.response = reply.body;
    if (res.destroyed) return;
    res.writeHead(reply.status, reply.headers);
    res.end(reply.body);
  }

  private process(
    endpoint: FakeEndpoint | undefined,
    req: http.IncomingMessage,
    record: RecordedRequest,
    raw: Buffer,
    refuse?: Extract<FakeFault, { kind: 'refuse' }>,
  ): Reply {
    if (!endpoint) return json(404, { error: 'not found', status: 0 });
    if (req.method !== 'POST') return json(405, { error: 'use POST', status: 0 });
    if (endpoint === 'import') {
      const refusal = this.checkImportAuth(req, record.query);
      if (refusal) return refusal;
    }
    if (record.gzip && (endpoint === 'engage' || endpoint === 'groups')) {
      return json(400, { error: `Content-Encoding gzip is not supported on /${endpoint}`, status: 0 });
    }
    const maxBytes = this.options.maxBodyBytes ?? 2 * 1024 * 1024;
    if (raw.length > maxBytes) {
      return json(413, {
        code: 413,
        error: `request exceeds max limit of ${maxBytes} bytes`,
        status: 'Request Entity Too Large',
      });
    }
    const items = this.parseItems(req, raw);
    if (!items) return json(400, { code: 400, error: 'could not parse the request body', status: 0 });
    const maxMessages = this.options.maxBatchMessages ?? 2000;
    if (items.length > maxMessages) {
      return json(413, {
        code: 413,
        error: `request exceeds max limit of ${maxMessages} records`,
        status: 'Request Entity Too Large',
      });
    }
    switch (endpoint) {
      case 'import':
        return this.importEvents(items, record.query, refuse);
      case 'track':
        return this.trackEvents(items, record.query);
      case 'engage':
      case 'groups':
        return this.updateProfiles(endpoint, items, record.query);
    }
  }

  private checkImportAuth(req: http.IncomingMessage, query: Record<string, string>): Reply | undefined {
    const unauthorized = json(401, { code: 401, error: 'Invalid credentials', status: 'Unauthorized' });
    const header = req.headers.authorization ?? '';
    const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header);
    if (!match) return unauthorized;
    const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    // Without the colon there is no valid Basic credential, even for an empty password.
    if (colon < 0) return unauthorized;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const { serviceAccount, apiSecret, projectId } = this.options;
    if (serviceAccount && user === serviceAccount.username && password === serviceAccount.secret) {
      if (query.project_id === undefined) {
        return json(400, {
          code: 400,
          error: 'project_id is required when authenticating with a service account',
          status: 'Bad Request',
        });
      }
      if (projectId === undefined || query.project_id !== String(projectId)) {
        return json(403, {
          code: 403,
          error: 'service account does not have access to this project',
          status: 'Forbidden',
        });
      }
      return undefined;
    }
    if (password === '' && apiSecret !== undefined && user === apiSecret) return undefined;
    if (password === '' && this.options.acceptTokenForImport !== false && user === this.token)
      return undefined;
    return unauthorized;
  }

  private parseItems(req: http.IncomingMessage, raw: Buffer): unknown[] | undefined {
    const type = String(req.headers['content-type'] ?? '');
    let text = raw.toString('utf8');
    try {
      if (type.includes('x-ndjson')) {
        return text
          .split('\n')
          .filter((line) => line.trim() !== '')
          .map((line) => JSON.parse(line));
      }
      if (type.includes('x-www-form-urlencoded')) {
        const data = new URLSearchParams(text).get('data') ?? '';
        text =
          data.trim().startsWith('[') || data.trim().startsWith('{')
            ? data
            : Buffer.from(data, 'base64').toString();
      }
      const parsed: unknown = JSON.parse(text);
      return Array.isArray(parsed) ? parsed : [parsed];
    } catch {
      return undefined;
    }
  }

  private storeEvent(item: JsonObject, endpoint: 'import' | 'track'): void {
    const properties = item.properties as JsonObject;
    const key = [item.event, properties.distinct_id, properties.time, properties.$insert_id]
      .map(String)
      .join('\u0000');
    const stored: StoredEvent = { event: item.event as string, properties, endpoint };
    const existing = this.byKey.get(key);
    // An event without $insert_id is never deduplicated (Mixpanel generates one per copy).
    if (existing !== undefined && properties.$insert_id !== undefined) {
      this.counters.duplicates += 1;
      this.events[existing] = stored;
      return;
    }
    this.byKey.set(key, this.events.length);
    this.events.push(stored);
  }

  private importEvents(
    items: unknown[],
    query: Record<string, string>,
    refuse?: Extract<FakeFault, { kind: 'refuse' }>,
  ): Reply {
    const key = refuse?.key ?? this.options.failedRecordsKey ?? 'insert_id';
    const failed: Record<string, unknown>[] = [];
    let imported = 0;
    const now = this.now();
    items.forEach((item, index) => {
      const properties = isObject(item) && isObject(item.properties) ? item.properties : {};
      const refused =
        refuse &&
        typeof properties.$insert_id === 'string' &&
        refuse.insertIds.includes(properties.$insert_id)
          ? {
              field: refuse.field ?? 'properties.time',
              message: refuse.message ?? "'properties.time' is invalid (refused by a fault)",
            }
          : undefined;
      const problem = refused ?? checkImportEvent(item, now);
      if (problem) {
        this.counters.invalid += 1;
        failed.push({
          ...(refuse?.withIndex === false ? {} : { index }),
          [key]: properties.$insert_id ?? null,
          field: problem.field,
          message: problem.message,
        });
        return;
      }
      imported += 1;
      this.storeEvent(item as JsonObject, 'import');
    });
    if (failed.length > 0 && query.strict === '1') {
      return json(400, {
        code: 400,
        error: 'some data points in the request failed validation',
        status: 'Bad Request',
        num_records_imported: imported,
        failed_records: failed,
      });
    }
    return json(200, { code: 200, num_records_imported: imported, status: 'OK' });
  }

  private trackEvents(items: unknown[], query: Record<string, string>): Reply {
    const now = this.now();
    let first: Problem | undefined;
    let valid = 0;
    for (const item of items) {
      const problem = checkTrackEvent(item, now, this.token);
      if (problem) {
        this.counters.invalid += 1;
        first ??= problem;
        continue;
      }
      valid += 1;
      const event = item as JsonObject;
      const time = (event.properties as JsonObject).time;
      if (typeof time === 'number' && timeMs(time) < now - TRACK_MAX_AGE_MS) {
        this.counters.silentlyDropped += 1;
        continue;
      }
      this.storeEvent(event, 'track');
    }
    return this.verboseReply(query, valid, first);
  }

  private updateProfiles(
    endpoint: 'engage' | 'groups',
    items: unknown[],
    query: Record<string, string>,
  ): Reply {
    let first: Problem | undefined;
    let valid = 0;
    for (const item of items) {
      const problem =
        endpoint === 'engage' ? checkProfileUpdate(item, this.token) : checkGroupUpdate(item, this.token);
      if (problem) {
        this.counters.invalid += 1;
        first ??= problem;
        continue;
      }
      valid += 1;
      const update = item as JsonObject;
      const states = endpoint === 'engage' ? this.profileStates : this.groupStates;
      const id =
        endpoint === 'engage'
          ? String(update.$distinct_id)
          : `${String(update.$group_key)}\u0000${String(update.$group_id)}`;
      const next = applyOperation(states.get(id), update);
      if (next) states.set(id, next);
      else states.delete(id);
      (endpoint === 'engage' ? this.profiles : this.groups).push({ update, ipParam: query.ip });
    }
    return this.verboseReply(query, valid, first);
  }

  /** `verbose=1`: `{status, error}`, status 1 only when all records were valid. Else `1`/`0`: any valid. */
  private verboseReply(query: Record<string, string>, valid: number, problem: Problem | undefined): Reply {
    if (query.verbose === '1') {
      return json(
        200,
        problem ? { status: 0, error: `${problem.field}: ${problem.message}` } : { status: 1, error: null },
      );
    }
    return { status: 200, body: valid > 0 ? '1' : '0', headers: { 'content-type': 'text/plain' } };
  }
}

/** Starts a fake Mixpanel on 127.0.0.1 (a free port unless `options.port` is given). */
export async function startFakeMixpanel(options: FakeMixpanelOptions = {}): Promise<FakeMixpanel> {
  const fake = new FakeMixpanelServer(options);
  await fake.listen(options.port ?? 0);
  return fake;
}
