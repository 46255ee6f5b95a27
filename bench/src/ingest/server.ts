/**
 * A lean loopback ingest server that accepts every peer's own wire format and answers at once, so that it is
 * never the bottleneck, and that counts events and the bytes that crossed the wire:
 *
 * - Mixpanel `/track`, `/import`, `/engage`, `/groups`: GET `?data=<base64 JSON>` (the official `mixpanel`
 *   package's single calls), POST form `data=<base64 or JSON>` (its batches), POST JSON array or NDJSON, gzip'd
 *   or not (idstitch's MixpanelSink). Answers as Mixpanel does: the strict `/import` JSON, the verbose
 *   `{status:1}`, or the plain `1`.
 * - Segment `/v1/batch`: `{ batch: [...] }`.
 * - PostHog `/batch/` and `/i/v0/e/`: `{ api_key, batch: [...] }`, gzip'd or not.
 *
 * Bytes on the wire are what the sockets read (request line, headers and body as sent, compressed or not), the
 * figure that a network bill or a proxy sees. Runs in its own process; the runner drives it over IPC:
 * `stats`, `reset`, `stall` (stop answering: requests are read and held, never answered).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { installFatalHandlers, onCommand, reply } from '../lib/child.js';

installFatalHandlers();

/**
 * `--lean`: answer without decoding bodies (no gunzip, no JSON parse), for the request-overhead scenario, where
 * this process shares the machine's cores with the server under test and the load generator: decoding every
 * batch would take CPU from the server under test that in production Mixpanel's servers would spend. Events
 * are then counted by the SDKs themselves; requests and bytes are still counted here.
 */
const lean = process.argv.includes('--lean');

interface Counters {
  requests: number;
  events: number;
  /** Requests whose events could not be counted (unknown path or unreadable body). */
  unparsed: number;
  bodyBytes: number;
  byPath: Record<string, { requests: number; events: number }>;
}

const fresh = (): Counters => ({ requests: 0, events: 0, unparsed: 0, bodyBytes: 0, byPath: {} });
let counters = fresh();
let stalled = false;
const held = new Set<http.ServerResponse>();
const sockets = new Set<Socket>();
let closedBytesIn = 0;
let closedBytesOut = 0;
let baseBytesIn = 0;
let baseBytesOut = 0;

function bytesOnWire(): { bytesIn: number; bytesOut: number } {
  let bytesIn = closedBytesIn;
  let bytesOut = closedBytesOut;
  for (const socket of sockets) {
    bytesIn += socket.bytesRead;
    bytesOut += socket.bytesWritten;
  }
  return { bytesIn: bytesIn - baseBytesIn, bytesOut: bytesOut - baseBytesOut };
}

function countJson(value: unknown): number {
  if (Array.isArray(value)) return value.length;
  if (value !== null && typeof value === 'object') {
    const batch = (value as { batch?: unknown }).batch;
    if (Array.isArray(batch)) return batch.length;
    return 1;
  }
  return 0;
}

function parseData(data: string): unknown {
  const text = data.trimStart();
  if (text.startsWith('[') || text.startsWith('{')) return JSON.parse(text);
  return JSON.parse(Buffer.from(data, 'base64').toString('utf8'));
}

/** Counts the events of one request in any of the formats above. */
function countEvents(url: URL, headers: http.IncomingHttpHeaders, raw: Buffer): number {
  const data = url.searchParams.get('data');
  if (data !== null && raw.length === 0) return countJson(parseData(data));
  if (raw.length === 0) return 0;
  const body = headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
  const type = headers['content-type'] ?? '';
  const text = body.toString('utf8');
  if (type.startsWith('application/x-www-form-urlencoded')) {
    const form = new URLSearchParams(text).get('data');
    return form === null ? 0 : countJson(parseData(form));
  }
  if (type.startsWith('application/x-ndjson')) return text.split('\n').filter((line) => line.trim()).length;
  return countJson(JSON.parse(text));
}

function answer(url: URL, path: string, events: number): { status: number; body: string } {
  if (path.endsWith('/import') && url.searchParams.get('strict') === '1') {
    return {
      status: 200,
      body: lean
        ? '{"code":200,"status":"OK"}'
        : `{"code":200,"num_records_imported":${events},"status":"OK"}`,
    };
  }
  if (/\/(track|import|engage|groups)\/?$/.test(path)) {
    return url.searchParams.get('verbose') === '1'
      ? { status: 200, body: '{"status":1,"error":null}' }
      : { status: 200, body: '1' };
  }
  if (path.endsWith('/v1/batch') || path.endsWith('/batch')) return { status: 200, body: '{"success":true}' };
  return { status: 200, body: '{"status":1}' };
}

/** `--tls=<dir>`: serve HTTPS with `<dir>/key.pem` and `<dir>/cert.pem`, as Mixpanel's API does. */
const tlsDir = process.argv.find((arg) => arg.startsWith('--tls='))?.slice('--tls='.length);

const handler: http.RequestListener = (request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const raw = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    const url = new URL(request.url ?? '/', 'http://ingest');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    let events = 0;
    if (!lean) {
      try {
        events = countEvents(url, request.headers, raw);
      } catch {
        counters.unparsed += 1;
      }
    }
    counters.requests += 1;
    counters.events += events;
    counters.bodyBytes += raw.length;
    const perPath = counters.byPath[path] ?? { requests: 0, events: 0 };
    counters.byPath[path] = perPath;
    perPath.requests += 1;
    perPath.events += events;
    if (stalled) {
      held.add(response);
      response.on('close', () => held.delete(response));
      return;
    }
    const { status, body } = answer(url, path, events);
    response.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    response.end(body);
  });
};
const server = tlsDir
  ? https.createServer(
      { key: readFileSync(`${tlsDir}/key.pem`), cert: readFileSync(`${tlsDir}/cert.pem`) },
      handler,
    )
  : http.createServer(handler);
/**
 * `--keep-alive-ms=N` (the instruction counts: 10 minutes): how long an idle connection stays open. Under
 * callgrind a phase lasts 10–70 s of wall time; with 30 s, whether the server closed the SDK's idle connection
 * during a phase (and the SDK's next flush reconnected) would depend on the wall clock. Its `Keep-Alive:
 * timeout=` header tells fetch to keep the connection as long.
 */
const keepAliveMs = Number(
  process.argv.find((arg) => arg.startsWith('--keep-alive-ms='))?.slice('--keep-alive-ms='.length) ?? 30_000,
);
server.keepAliveTimeout = keepAliveMs;
server.headersTimeout = Math.max(60_000, keepAliveMs + 1_000);
server.requestTimeout = 0;
// `connection` gives the TCP socket (under TLS, before the handshake), so its counts are the bytes on the wire.
server.on('connection', (socket: Socket) => {
  sockets.add(socket);
  socket.on('close', () => {
    closedBytesIn += socket.bytesRead;
    closedBytesOut += socket.bytesWritten;
    sockets.delete(socket);
  });
});

onCommand((message) => {
  switch (message.type) {
    case 'stats':
      return { type: 'stats', ...counters, ...bytesOnWire(), held: held.size, connections: sockets.size };
    case 'reset': {
      counters = fresh();
      const { bytesIn, bytesOut } = bytesOnWire();
      baseBytesIn += bytesIn;
      baseBytesOut += bytesOut;
      return { type: 'reset' };
    }
    case 'stall':
      stalled = message.value === true;
      if (!stalled) {
        for (const response of held) {
          response.writeHead(503);
          response.end();
        }
        held.clear();
      }
      return { type: 'stall' };
    case 'close':
      for (const socket of sockets) socket.destroy();
      server.close(() => process.exit(0));
      return { type: 'closing' };
    default:
      return undefined;
  }
});

// A deep accept queue: SDKs without a concurrency limit (Segment) open hundreds of connections at once.
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  reply({ type: 'ready', port: (server.address() as AddressInfo).port });
});
