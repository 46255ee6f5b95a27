import { serialize } from 'cookie';

/** Attributes of a cookie idstitch sets. `maxAge` is in seconds, as in the `Set-Cookie` header. */
export interface CookieAttributes {
  path: string;
  domain?: string;
  maxAge: number;
  httpOnly: boolean;
  secure: boolean;
  sameSite: 'lax' | 'strict' | 'none';
}

/** One cookie to set on the response. Adapters either serialise it or hand it to their framework's API. */
export interface CookieWrite {
  name: string;
  /** The raw value; `serializeCookie` URI-encodes it. */
  value: string;
  attributes: CookieAttributes;
}

/**
 * Every value of cookie `name` in a `Cookie` header, in header order. Browsers send a longer-path or
 * older sibling-domain cookie first, so a planted cookie can precede ours: callers must consider all of them,
 * not just the first as most parsers do.
 *
 * Reads each `;`-separated pair as the `cookie` package's `parse` does (name and value trimmed of spaces and
 * tabs, the value URI-decoded when it holds a `%` and decodes), in place: no split, no object per pair, since
 * this runs on every request.
 */
export function cookieValues(header: string | undefined, name: string): string[] {
  if (!header || header.indexOf(name) === -1) return [];
  const values: string[] = [];
  const length = header.length;
  let start = 0;
  while (start < length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = length;
    const eq = header.indexOf('=', start);
    if (eq !== -1 && eq < end) {
      const keyStart = skipBlanks(header, start, eq);
      if (eq - keyStart >= name.length && header.startsWith(name, keyStart)) {
        if (trimBlanksEnd(header, keyStart + name.length, eq) === keyStart + name.length) {
          const valueStart = skipBlanks(header, eq + 1, end);
          values.push(decodeValue(header.slice(valueStart, trimBlanksEnd(header, valueStart, end))));
        }
      }
    }
    start = end + 1;
  }
  return values;
}

function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** The first index in [from, to) that is not a space or tab, or `to`. */
function skipBlanks(text: string, from: number, to: number): number {
  while (from < to && isBlank(text.charCodeAt(from))) from++;
  return from;
}

/** The end of [from, to) once trailing spaces and tabs are dropped. */
function trimBlanksEnd(text: string, from: number, to: number): number {
  while (to > from && isBlank(text.charCodeAt(to - 1))) to--;
  return to;
}

function decodeValue(value: string): string {
  if (value.indexOf('%') === -1) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Serialises a cookie for a `Set-Cookie` header. Throws a TypeError for values the RFC forbids (never CR/LF). */
export function serializeCookie(write: CookieWrite): string {
  const { attributes } = write;
  return serialize(write.name, write.value, {
    path: attributes.path,
    domain: attributes.domain,
    maxAge: attributes.maxAge,
    httpOnly: attributes.httpOnly,
    secure: attributes.secure,
    sameSite: attributes.sameSite,
  });
}
