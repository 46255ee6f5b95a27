import type { IncomingMessage, ServerResponse } from 'node:http';
import { IdstitchOptionsError } from '@idstitch/core';
import { type AccessCheck, accessCheck, type InspectorAccessOptions } from './access.js';
import { SnapshotFeed } from './feed.js';
import { mergeSources } from './merge-source.js';
import type { InspectorSnapshot } from './snapshot-types.js';
import { localFileSource, type RecordSource } from './source.js';
import { loadStaticFiles, type StaticFile } from './static-files.js';
import { UI_DIR } from './ui-dir.js';

/** Options of {@link inspector}. */
export interface InspectorOptions extends InspectorAccessOptions {
  /**
   * What to show: a LocalSink file ({@link localFileSource}), a delivery spool ({@link spoolSource}), a Redis
   * outbox ({@link redisOutboxSource}), or several of them, merged by `$insert_id`. Default: the file
   * LocalSink writes when no path is given (`.idstitch/events.ndjson`).
   */
  source?: RecordSource | readonly RecordSource[];
  /** Folder of the pre-built page. Default: the one shipped in this package (`dist/ui`). */
  uiDir?: string;
  /** Comment line sent on idle event streams so proxies keep them open, in ms. Default 15 000. */
  heartbeatMs?: number;
}

/** A Node request handler, usable as Express/Connect middleware, plus `close()` to stop watching. */
export interface InspectorHandler {
  (request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void): void;
  /** Ends the open event streams, stops watching the sources and closes their connections. */
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const PAGE_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function sendJson(response: ServerResponse, body: unknown): void {
  response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' });
  response.end(JSON.stringify(body));
}

function sendText(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
  response.end(`${text}\n`);
}

function snapshotEvent(snapshot: InspectorSnapshot): string {
  return `event: snapshot\nid: ${snapshot.revision}\ndata: ${JSON.stringify(snapshot)}\n\n`;
}

function isSource(value: unknown): value is RecordSource {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as RecordSource).read === 'function' &&
    typeof (value as RecordSource).watch === 'function'
  );
}

/** Checks the `source` option at start-up; several sources become one merged source. */
function resolveSource(option: InspectorOptions['source']): RecordSource {
  if (option === undefined) return localFileSource();
  const list = Array.isArray(option) ? option : [option];
  if (list.length === 0 || !list.every(isSource)) {
    throw new IdstitchOptionsError(
      'source',
      list.length === 0 ? 'is an empty list' : 'must be a record source or a list of them',
      'Pass localFileSource(path), spoolSource(dir), redisOutboxSource({ redis: url }) or a list of them',
    );
  }
  return mergeSources(list);
}

/**
 * The inspector page as middleware. Mount it in development at a path of your choosing:
 *
 * ```ts
 * if (process.env.NODE_ENV !== 'production') app.use('/__idstitch', inspector());
 * ```
 *
 * Serves the pre-built page, `api/snapshot` (JSON) and `api/stream` (Server-Sent Events: a new snapshot
 * whenever the source changes). Read-only.
 *
 * @throws IdstitchOptionsError in production unless `allowInProduction` and a `token` or `authorize` are given.
 */
export function inspector(options: InspectorOptions = {}): InspectorHandler {
  const allowed: AccessCheck = accessCheck(options);
  const source = resolveSource(options.source);
  const feed = new SnapshotFeed(source);
  const uiDir = options.uiDir ?? UI_DIR;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  let files: Promise<Map<string, StaticFile>> | undefined;
  const streams = new Set<ServerResponse>();

  const serveFile = async (response: ServerResponse, path: string): Promise<boolean> => {
    files ??= loadStaticFiles(uiDir).catch((error: unknown) => {
      files = undefined;
      throw error;
    });
    let found: StaticFile | undefined;
    try {
      found = (await files).get(path);
    } catch {
      sendText(
        response,
        500,
        `idstitch inspector: the page is not built (no ${uiDir}). Run: pnpm --filter @idstitch/inspector build`,
      );
      return true;
    }
    if (found === undefined) return false;
    response.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': found.type,
      ...(found.immutable ? { 'cache-control': 'public, max-age=31536000, immutable' } : {}),
      ...(path === '/index.html' ? { 'content-security-policy': PAGE_POLICY } : {}),
    });
    response.end(found.body);
    return true;
  };

  const stream = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    response.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    streams.add(response);
    const send = (snapshot: InspectorSnapshot) => response.write(snapshotEvent(snapshot));
    const unsubscribe = feed.subscribe(send);
    const heartbeat = setInterval(() => response.write(': keep-alive\n\n'), heartbeatMs);
    const end = () => {
      clearInterval(heartbeat);
      unsubscribe();
      streams.delete(response);
    };
    request.on('close', end);
    response.on('close', end);
    send(await feed.current());
  };

  const handle = async (request: IncomingMessage, response: ServerResponse, next?: (e?: unknown) => void) => {
    const method = request.method ?? 'GET';
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    const known = path === '/' || path.startsWith('/api/') || path.startsWith('/assets/');
    if (!known || (method !== 'GET' && method !== 'HEAD')) {
      if (next) return next();
      return sendText(response, 404, 'Not found');
    }
    if (!(await allowed(request, response))) return;
    if (path === '/') {
      const original = ((request as { originalUrl?: string }).originalUrl ?? '/').split('?')[0] ?? '/';
      if (!original.endsWith('/')) {
        // Relative links in the page need the trailing slash (`/__idstitch` → `/__idstitch/`).
        const query = (request.url ?? '').includes('?') ? `?${(request.url ?? '').split('?')[1]}` : '';
        response.writeHead(308, { ...SECURITY_HEADERS, location: `${original}/${query}` });
        return response.end();
      }
      await serveFile(response, '/index.html');
      return;
    }
    if (path === '/api/snapshot') return sendJson(response, await feed.current());
    if (path === '/api/stream') return stream(request, response);
    if (await serveFile(response, path)) return;
    if (next) return next();
    sendText(response, 404, 'Not found');
  };

  const middleware = function idstitchInspector(
    request: IncomingMessage,
    response: ServerResponse,
    next?: (error?: unknown) => void,
  ): void {
    handle(request, response, next).catch((error: unknown) => {
      if (next) return next(error);
      if (!response.headersSent) sendText(response, 500, 'idstitch inspector: internal error');
      else response.end();
    });
  };
  return Object.assign(middleware, {
    async close(): Promise<void> {
      for (const response of streams) response.end();
      streams.clear();
      feed.close();
      await source.close?.();
    },
  });
}
