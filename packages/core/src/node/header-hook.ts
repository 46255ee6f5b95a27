/**
 * Running code just before a Node response writes its headers, at the lowest cost per request.
 *
 * A framework that gives responses a prototype of its own between the response and Node's
 * `http.ServerResponse.prototype` (Express: `app.response` → express's `res`) gets one `writeHead` override,
 * installed once on the prototype just above Node's (so sub-apps, whose prototypes inherit from it, share it), that
 * looks the response up in a WeakMap. Every other response — Node's own (Koa, plain `http`), or one whose
 * `writeHead` another middleware already wrapped (express-session, compression: their wrapper may have captured
 * Node's function before ours was installed) — gets the per-response wrapper of `on-headers`, as before. Wrapping
 * every response costs a closure, a function and a new own property per request; the override costs one lookup.
 */
import { ServerResponse } from 'node:http';
import onHeaders from 'on-headers';
import { defineAboveNode } from './prototype-property.js';

/** Called once, just before a response's headers are written. Must not throw: the response is on its way. */
export interface HeaderListener {
  beforeHeaders(response: ServerResponse): void;
}

interface HookSlot {
  /** Listeners waiting for the headers of a response that the prototype override covers. */
  readonly pending: WeakMap<ServerResponse, HeaderListener>;
  /** Response prototypes already examined: whether the override covers responses that have them. */
  readonly covers: WeakMap<object, boolean>;
  /** The override, shared by every copy of this module so that each recognises it on a prototype. */
  readonly writeHead: (this: ServerResponse, ...args: unknown[]) => ServerResponse;
  /** The prototype covered last: one comparison for the common case of one app. */
  last: object | undefined;
}

// One process-wide slot (OpenTelemetry's pattern): a CJS and an ESM copy of the core, or two installed
// versions, share the pending map and the override instead of stacking two.
const SLOT = Symbol.for('@idstitch/core:header-hook@1');
const slots = globalThis as typeof globalThis & { [SLOT]?: HookSlot };
slots[SLOT] ??= createSlot();
const slot: HookSlot = slots[SLOT];

function createSlot(): HookSlot {
  const pending = new WeakMap<ServerResponse, HeaderListener>();
  // A plain function over `arguments`: writeHead's signature has three shapes (status; status, headers;
  // status, message, headers), and the common call, Node's `_implicitHeader`, passes the status alone.
  const writeHead = function writeHead(this: ServerResponse): ServerResponse {
    const listener = pending.get(this);
    if (listener !== undefined) {
      pending.delete(this);
      // biome-ignore lint/complexity/noArguments: forwarded unchanged, whatever shape the caller used
      if (arguments.length > 1) return writeHeadWithHeaders(this, listener, arguments);
      listener.beforeHeaders(this);
    }
    // Looked up at call time, so that a later patch of Node's prototype (an APM agent) is honoured.
    // biome-ignore lint/complexity/noArguments: forwarded unchanged
    return (ServerResponse.prototype.writeHead as Function).apply(this, arguments);
  };
  return { pending, covers: new WeakMap(), writeHead, last: undefined };
}

/**
 * Calls `listener.beforeHeaders(response)` once, just before `response` writes its headers (also when the
 * framework's error handling writes them). Cookies the listener appends are kept alongside headers passed to
 * `writeHead(status, headers)`, which are applied first.
 */
export function beforeHeaders(response: ServerResponse, listener: HeaderListener): void {
  const prototype = Object.getPrototypeOf(response) as object | null;
  if (
    prototype !== null &&
    (prototype === slot.last || covers(prototype)) &&
    !Object.hasOwn(response, 'writeHead') &&
    !slot.pending.has(response)
  ) {
    slot.pending.set(response, listener);
    return;
  }
  onHeaders(response, function idstitchBeforeHeaders(this: ServerResponse) {
    listener.beforeHeaders(this);
  });
}

function covers(prototype: object): boolean {
  let covered = slot.covers.get(prototype);
  if (covered === undefined) {
    covered = install(prototype);
    slot.covers.set(prototype, covered);
  }
  if (covered) slot.last = prototype;
  return covered;
}

/**
 * Installs the override on the prototype just above Node's, unless the chain does not reach Node's prototype
 * (HTTP/2 compatibility responses, test doubles), has no prototype of its own (Koa, plain `http`), or has a
 * `writeHead` of someone else's on the way, which might not call ours.
 */
function install(prototype: object): boolean {
  return defineAboveNode(
    prototype,
    ServerResponse.prototype,
    'writeHead',
    { value: slot.writeHead, writable: true },
    (own) => own.value === slot.writeHead,
  );
}

/**
 * `writeHead(status, headers)` or `writeHead(status, message, headers)`: applies the headers first, as Node
 * would, so the listener sees them and appends to them (Node's own writeHead would otherwise `setHeader` a
 * `Set-Cookie` passed here over the one the listener set); then writes the head with the status (and message).
 * The same steps as `on-headers`.
 */
function writeHeadWithHeaders(
  response: ServerResponse,
  listener: HeaderListener,
  args: IArguments,
): ServerResponse {
  const headerIndex = typeof args[1] === 'string' ? 2 : 1;
  const headers = args.length > headerIndex ? (args[headerIndex] as unknown) : undefined;
  response.statusCode = args[0] as number;
  if (Array.isArray(headers)) applyHeaderArray(response, headers);
  else if (headers !== undefined && headers !== null) {
    for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
      if (name) response.setHeader(name, value as string | string[] | number);
    }
  }
  listener.beforeHeaders(response);
  const writeHead = ServerResponse.prototype.writeHead as Function;
  return headerIndex === 2
    ? writeHead.call(response, response.statusCode, args[1])
    : writeHead.call(response, response.statusCode);
}

/** `[[name, value], …]` sets each; `[name, value, name, value, …]` replaces each name with its values. */
function applyHeaderArray(response: ServerResponse, headers: unknown[]): void {
  if (headers.length > 0 && Array.isArray(headers[0])) {
    for (const [name, value] of headers as [string, string | string[]][]) {
      if (name) response.setHeader(name, value);
    }
    return;
  }
  if (headers.length % 2 !== 0) throw new TypeError('headers array is malformed');
  for (let index = 0; index < headers.length; index += 2) response.removeHeader(headers[index] as string);
  for (let index = 0; index < headers.length; index += 2) {
    const name = headers[index] as string;
    if (name) response.appendHeader(name, headers[index + 1] as string | string[]);
  }
}
