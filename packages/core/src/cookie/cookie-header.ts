import { parse, serialize } from 'cookie';

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
 */
export function cookieValues(header: string | undefined, name: string): string[] {
  if (!header || header.indexOf(name) === -1) return [];
  const values: string[] = [];
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue;
    const value = parse(pair)[name];
    if (value !== undefined) values.push(value);
  }
  return values;
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
