import type { MixpanelEndpoint } from './options.js';
import { isRetryableStatus } from './retry.js';

/** One record Mixpanel refused in strict mode. */
export interface FailedRecord {
  /** Position in the request's array, when Mixpanel gave it. */
  index: number | undefined;
  /** `$insert_id` of the event, when Mixpanel gave it (under `insert_id` or `$insert_id`). */
  insertId: string | undefined;
  /** The offending field, e.g. `properties.time`. */
  field: string;
  message: string;
}

/** What a response means for the batch that was sent. */
export type ResponseOutcome =
  | { type: 'delivered' }
  /** Some records were refused; the rest were ingested. Never retried: the refused ones would fail again. */
  | { type: 'partial'; failed: FailedRecord[] }
  /** Nothing (as far as we can tell) was ingested, and retrying will not help. */
  | { type: 'rejected'; detail: string }
  /** Credentials refused: a configuration error. */
  | { type: 'unauthorized'; detail: string }
  | { type: 'too_large'; detail: string }
  | { type: 'retry'; detail: string };

/** The part of an HTTP response that decides the outcome. */
export interface ResponseFacts {
  status: number;
  body: string;
  location?: string | null;
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Mixpanel's own error text, shortened: it goes into error messages, so it must stay small. */
function errorText(json: unknown, body: string): string {
  const text = isRecord(json) && typeof json.error === 'string' ? json.error : body.trim();
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function describe(status: number, json: unknown, body: string): string {
  const text = errorText(json, body);
  return text ? `HTTP ${status}: ${text}` : `HTTP ${status}`;
}

/**
 * Reads `failed_records`, whose entries name the record as `insert_id` in the OpenAPI spec and as
 * `$insert_id` in the prose docs; both are accepted. Entries naming no record are skipped.
 */
function failedRecords(json: unknown): FailedRecord[] | undefined {
  if (!isRecord(json) || !Array.isArray(json.failed_records)) return undefined;
  const records: FailedRecord[] = [];
  for (const entry of json.failed_records) {
    if (!isRecord(entry)) continue;
    const index = typeof entry.index === 'number' && Number.isInteger(entry.index) ? entry.index : undefined;
    const rawId = entry.insert_id ?? entry.$insert_id;
    const insertId = typeof rawId === 'string' && rawId !== '' ? rawId : undefined;
    if (index === undefined && insertId === undefined) continue;
    records.push({
      index,
      insertId,
      field: typeof entry.field === 'string' ? entry.field : 'unknown',
      message: typeof entry.message === 'string' ? entry.message : 'rejected by Mixpanel',
    });
  }
  return records;
}

/**
 * The status inside a `/track`, `/engage` or `/groups` body. These endpoints answer 200 even when
 * they refuse everything, so the body is the only signal: `1`/`0` plain, or `{status, error}` with
 * `verbose=1` (status as a number, or a string on some paths).
 */
function bodyStatus(json: unknown, body: string): 'ok' | 'failed' | 'unknown' {
  const text = body.trim();
  if (text === '1') return 'ok';
  if (text === '0') return 'failed';
  if (isRecord(json) && 'status' in json) {
    const status = json.status;
    if (status === 1 || status === '1' || status === 'OK' || status === 'ok') return 'ok';
    if (status === 0 || status === '0' || status === 'error') return 'failed';
  }
  return 'unknown';
}

/** Decides what a response means, following Mixpanel's documented shapes for each endpoint. */
export function interpretResponse(endpoint: MixpanelEndpoint, response: ResponseFacts): ResponseOutcome {
  const { status, body } = response;
  const json = parseJson(body);

  // Treat failed_records as authoritative whatever the status: strict mode answers 400 with them,
  // and 200 with them is modelled by Segment's tests too.
  const failed = failedRecords(json);
  if ((status === 200 || status === 400) && failed && failed.length > 0) {
    return { type: 'partial', failed };
  }

  if (status >= 200 && status < 300) {
    if (endpoint === 'import') return { type: 'delivered' };
    // Only the documented failure signals count as failure; a 200 with an unexpected body (a proxy,
    // say) most likely got through, and dropping it as rejected would be the worse mistake.
    return bodyStatus(json, body) === 'failed'
      ? { type: 'rejected', detail: `HTTP ${status} with body ${body.trim().slice(0, 200)}` }
      : { type: 'delivered' };
  }
  if (status === 401 || status === 403) return { type: 'unauthorized', detail: describe(status, json, body) };
  if (status === 413) return { type: 'too_large', detail: describe(status, json, body) };
  if (isRetryableStatus(status)) return { type: 'retry', detail: describe(status, json, body) };
  if (status >= 300 && status < 400) {
    return {
      type: 'rejected',
      detail: `HTTP ${status} redirect to ${response.location ?? '(no location)'}; point \`host\` at the final URL`,
    };
  }
  return { type: 'rejected', detail: describe(status, json, body) };
}
