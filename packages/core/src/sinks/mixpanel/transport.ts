type GzipCallback = (body: Uint8Array, done: (error: Error | null, result: Uint8Array) => void) => void;

/** Node's zlib where the runtime has it (reached without a `node:` import, so web bundles stay clean). */
const zlibGzip = (
  (globalThis as { process?: { getBuiltinModule?(id: string): unknown } }).process?.getBuiltinModule?.(
    'node:zlib',
  ) as { gzip?: GzipCallback } | undefined
)?.gzip;

/** Response bodies beyond this are cut: Mixpanel's are tiny, and a proxy's HTML page must not fill memory. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/** A response, read to the end (or to the cap). */
export interface HttpResponse {
  status: number;
  retryAfter: string | null;
  location: string | null;
  body: string;
}

/** Why a request produced no response. */
export type TransportFailure = 'timeout' | 'network' | 'aborted';

/** A request that produced no HTTP response: refused, reset, timed out, or aborted by `close()`. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  readonly kind: TransportFailure;
  /** System or undici error code, e.g. `ECONNREFUSED`, `UND_ERR_SOCKET`. */
  readonly code: string | undefined;

  constructor(kind: TransportFailure, message: string, code?: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.kind = kind;
    this.code = code;
  }
}

/** One request as the sink builds it. */
export interface HttpRequest {
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
  timeoutMs: number;
  /** Aborted by `close()` when its deadline passes. */
  signal: AbortSignal;
}

/** Sends requests. The default uses Node's built-in fetch; tests go through it against a real socket. */
export type HttpSend = (request: HttpRequest) => Promise<HttpResponse>;

/**
 * Gzips a request body: with Node's zlib (on the libuv thread pool, not the event loop) where the runtime has
 * it, otherwise with the Web-standard `CompressionStream` (workerd, browsers).
 */
export function gzip(body: Uint8Array): Promise<Uint8Array> {
  if (zlibGzip) {
    return new Promise((resolve, reject) =>
      zlibGzip(body, (error, result) => (error ? reject(error) : resolve(result))),
    );
  }
  const stream = new Blob([body as Uint8Array<ArrayBuffer>])
    .stream()
    .pipeThrough(new CompressionStream('gzip'));
  return new Response(stream).arrayBuffer().then((buffer) => new Uint8Array(buffer));
}

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== null && typeof current === 'object'; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

async function readCapped(response: Response): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size >= MAX_RESPONSE_BYTES) {
      await reader.cancel();
      break;
    }
  }
  const decoder = new TextDecoder();
  const text = chunks.map((chunk) => decoder.decode(chunk, { stream: true })).join('') + decoder.decode();
  return text.slice(0, MAX_RESPONSE_BYTES);
}

/**
 * POSTs with Node's fetch. The timeout covers the whole exchange, body included, so a server that
 * stalls mid-response cannot hold a batch forever. Redirects are not followed: a POST turned into a
 * GET would lose the batch while looking like success.
 */
export const fetchSend: HttpSend = async (request) => {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, request.timeoutMs);
  // The socket of a request in flight keeps the process alive; the timer need not.
  (timer as { unref?(): void }).unref?.();
  const onAbort = () => controller.abort();
  if (request.signal.aborted) controller.abort();
  else request.signal.addEventListener('abort', onAbort, { once: true });
  try {
    const response = await fetch(request.url, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
      signal: controller.signal,
      redirect: 'manual',
    });
    const body = await readCapped(response);
    return {
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      location: response.headers.get('location'),
      body,
    };
  } catch (error) {
    if (timedOut) {
      throw new TransportError('timeout', `no complete response within ${request.timeoutMs} ms`, 'ETIMEDOUT');
    }
    if (request.signal.aborted) throw new TransportError('aborted', 'aborted by close()', 'ABORT_ERR');
    const code = errorCode(error);
    const message = error instanceof Error ? error.message : String(error);
    throw new TransportError('network', code ? `${message} (${code})` : message, code, error);
  } finally {
    clearTimeout(timer);
    request.signal.removeEventListener('abort', onAbort);
  }
};
