/**
 * Defines `key` once on a framework's prototype, the one just above Node's own (`IncomingMessage.prototype` or
 * `ServerResponse.prototype`), so every object of that framework shares it instead of carrying an own property.
 *
 * Refused (false) when the chain does not reach Node's prototype (HTTP/2 compatibility objects, test doubles),
 * has no prototype of its own in between (Koa and plain `http` use Node's directly: defining it there would
 * change every server in the process), or meets a `key` of someone else's on the way, which might hide ours.
 * `isOurs` tells our own descriptor, so installing twice (two apps) is a no-op.
 */
export function defineAboveNode(
  prototype: object,
  nodePrototype: object,
  key: PropertyKey,
  descriptor: PropertyDescriptor,
  isOurs: (own: PropertyDescriptor) => boolean,
): boolean {
  let base: object | undefined;
  let current: object | null = prototype;
  while (current !== null && current !== nodePrototype) {
    const own = Object.getOwnPropertyDescriptor(current, key);
    if (own !== undefined && !isOurs(own)) return false;
    base = current;
    current = Object.getPrototypeOf(current) as object | null;
  }
  if (current === null || base === undefined) return false;
  if (!Object.hasOwn(base, key)) {
    Object.defineProperty(base, key, { ...descriptor, enumerable: false, configurable: true });
  }
  return true;
}
