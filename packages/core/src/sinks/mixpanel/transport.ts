import type { ChunkBuffer } from './chunks.js';

type GzipCallback = (
  body: Uint8Array,
  options: { level: number; chunkSize: number },
  done: (error: Error | null, result: Uint8Array) => void,
) => void;

/** Node's zlib where the runtime has it (reached without a `node:` import, so web bundles stay clean). */
const zlibGzip = (
  (globalThis as { process?: { getBuiltinModule?(id: string): unknown } }).process?.getBuiltinModule?.(
    'node:zlib',
  ) as { gzip?: GzipCallback } | undefined
)?.gzip;

/**
 * Gzip level 1, chosen by measurement on a batch of 2000 typical events (1.1 MB of JSON, Node 20, one core):
 * level 1 takes 2.8 ms of CPU and sends 88 KB, level 6 (zlib's default) 4.8 ms for 78 KB. Level 6 costs 1 µs
 * more per event to save 5 bytes of the 550 each event holds; the batch is still 12× smaller than its JSON.
 */
export const GZIP_LEVEL = 1;
/**
 * Output chunk of Node's zlib: its default (16 KiB) makes a 90 KB body a series of thread-pool round trips,
 * which cost another 1.4 ms per batch at level 6 (0.6 ms at level 1) on the main thread.
 */
const GZIP_CHUNK_BYTES = 64 * 1024;
const GZIP_OPTIONS = { level: GZIP_LEVEL, chunkSize: GZIP_CHUNK_BYTES };

/** The two methods of Node's Buffer the body encoder uses, when the runtime has Buffer. */
interface NodeBuffer extends Uint8Array {
  write(text: string, offset: number, encoding: 'utf8'): number;
}
const nodeBuffer = (
  globalThis as {
    Buffer?: { allocUnsafe(size: number): NodeBuffer; allocUnsafeSlow(size: number): NodeBuffer };
  }
).Buffer;
const encoder = new TextEncoder();

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
      zlibGzip(body, GZIP_OPTIONS, (error, result) => (error ? reject(error) : resolve(result))),
    );
  }
  const stream = new Blob([body as Uint8Array<ArrayBuffer>])
    .stream()
    .pipeThrough(new CompressionStream('gzip'));
  return new Response(stream).arrayBuffer().then((buffer) => new Uint8Array(buffer));
}

/** What the body encoder needs of a queued message: its JSON and the UTF-8 length of that JSON. */
export interface EncodableMessage {
  readonly json: string;
  readonly bytes: number;
  /** The chunk holding the JSON already in UTF-8, at `start`, followed by a comma (see `ChunkedMessage`). */
  readonly chunk?: ChunkBuffer;
  readonly start?: number;
}

/**
 * Writes the messages' JSON as one JSON array into `target`: `[m1,m2,…]`, exactly `bytes` long. Each message is
 * written once, straight into the buffer: no joined string (which copies every message once more) and no second
 * copy to encode it (writing ASCII as Latin-1 instead would save 30 ns a message, not worth trusting `bytes` for).
 * False when what was written does not add up to `bytes` (never expected: the caller then takes the exact, slower
 * path), so a wrong `bytes` can cost time but never change what is sent.
 */
function writeJsonArray(target: NodeBuffer, messages: readonly EncodableMessage[], bytes: number): boolean {
  if (bytes < 2 || target.length < bytes) return false;
  target[0] = 0x5b; // [
  let offset = 1;
  const count = messages.length;
  for (let i = 0; i < count; ) {
    const message = messages[i] as EncodableMessage;
    const { chunk, start } = message;
    if (chunk !== undefined && start !== undefined) {
      // Messages queued one after the other sit one after the other in their chunk, commas between them
      // included: a run of them is copied at once.
      let end = start + message.bytes;
      for (i += 1; i < count; i += 1) {
        const next = messages[i] as EncodableMessage;
        if (next.chunk !== chunk || next.start !== end + 1) break;
        end = next.start + next.bytes;
      }
      if (offset + (end - start) + 1 > bytes) return false;
      offset += chunk.copy(target, offset, start, end);
    } else {
      if (offset + message.bytes + 1 > bytes) return false;
      offset += target.write(message.json, offset, 'utf8');
      i += 1;
    }
    if (i < count) {
      target[offset] = 0x2c; // ,
      offset += 1;
    }
  }
  if (offset !== bytes - 1) return false;
  target[offset] = 0x5d; // ]
  return true;
}

function joinedJsonArray(messages: readonly EncodableMessage[]): Uint8Array {
  return encoder.encode(`[${messages.map((message) => message.json).join(',')}]`);
}

/** The messages' JSON as one JSON array in UTF-8, `bytes` long (brackets and commas included). */
export function jsonArray(messages: readonly EncodableMessage[], bytes: number): Uint8Array {
  if (nodeBuffer) {
    const body = nodeBuffer.allocUnsafe(bytes);
    if (writeJsonArray(body, messages, bytes)) return body;
  }
  return joinedJsonArray(messages);
}

/**
 * Buffers for the JSON of bodies that are gzip'd: only zlib reads it, so the memory is reused rather than
 * allocated (outside V8's heap, where each megabyte counts towards the next full GC) for every batch. At most
 * one per concurrent gzip of the default settings is kept, each at most the largest batch Mixpanel accepts.
 */
const scratch: NodeBuffer[] = [];
const MAX_SCRATCH_BUFFERS = 2;
const MAX_SCRATCH_BYTES = 2 * 1024 * 1024;

/** A request body: the messages as a JSON array, gzip'd when asked. */
export async function encodeBody(
  messages: readonly EncodableMessage[],
  bytes: number,
  compress: boolean,
): Promise<Uint8Array> {
  if (!compress) return jsonArray(messages, bytes);
  if (!nodeBuffer || !zlibGzip || bytes > MAX_SCRATCH_BYTES) return gzip(jsonArray(messages, bytes));
  let buffer = scratch.pop();
  if (buffer === undefined || buffer.length < bytes) {
    // Sized up to a power of two, so that a smaller batch later reuses it.
    buffer = nodeBuffer.allocUnsafeSlow(
      Math.min(MAX_SCRATCH_BYTES, 2 ** Math.ceil(Math.log2(Math.max(bytes, 1024)))),
    );
  }
  try {
    return await gzip(
      writeJsonArray(buffer, messages, bytes) ? buffer.subarray(0, bytes) : joinedJsonArray(messages),
    );
  } finally {
    if (scratch.length < MAX_SCRATCH_BUFFERS) scratch.push(buffer);
  }
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
