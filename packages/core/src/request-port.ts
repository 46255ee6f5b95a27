/**
 * The one shape the core reads requests through. Each adapter maps its framework's request onto it;
 * nothing else about the framework reaches the core.
 */
export interface RequestPort<Req = unknown> {
  /** The framework's own request object, handed to `resolveUserId` and `consent.isOptedOut`. */
  readonly request: Req;
  /** Every value of cookie `name`, in header order (duplicates included, already verified by the framework if it signs cookies). */
  cookies(name: string): string[];
  /** A request header by lower-case name; the first value when repeated. */
  header(name: string): string | undefined;
  /** True when the request arrived over HTTPS, as the framework judges it (trust-proxy aware). */
  readonly secure: boolean;
  /** The client IP as the framework resolves it (trust-proxy aware). */
  readonly ip: string | undefined;
  /** Request path with its query string (the core redacts or strips it per `requestProperties.query`). */
  readonly path: string;
  /**
   * The host the client asked for (`app.example.com:8443`), as the framework judges it behind proxies
   * (Express `req.host`). Optional: without it the `Host` header is used. Gives `$current_url` its origin
   * and the mixpanel-browser cookie its domain.
   */
  readonly host?: string;
  /**
   * True when the framework verified cookie `name` with a retired key of its own (Koa's `app.keys` after a
   * rotation), so idstitch writes it again, signed with the current key, even though its value is unchanged.
   * Leave it out when the framework does not sign cookies.
   */
  isCookieStale?(name: string): boolean;
  /**
   * How many values of cookie `name` the framework's own signing rejected and `cookies()` left out (Koa with
   * `app.keys`), so that a tampered or planted cookie is still reported. Leave it out when the framework does
   * not sign cookies.
   */
  rejectedCookies?(name: string): number;
}
