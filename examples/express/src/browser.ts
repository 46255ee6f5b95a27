/**
 * A very small browser for the demo: Node's `fetch` plus one cookie jar, following redirects the way a
 * browser does (a 303 after a form post becomes a GET, cookies set by the redirect response are kept).
 * Each instance is one browser profile, so two instances never share cookies.
 */
export interface Visit {
  method: string;
  path: string;
  status: number;
  /** The form posted, URL-encoded. */
  form?: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** What a desktop Chrome sends, so the events carry mixpanel-browser's `$browser`, `$os`… */
export const DEMO_USER_AGENT =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';

export class Browser {
  private readonly jar = new Map<string, string>();
  /** Every request made, redirects included, in order. */
  readonly visits: Visit[] = [];

  constructor(private readonly origin: string) {}

  /** A page load; `referer` is the page the visitor came from (a search result, a newsletter). */
  get(path: string, referer?: string): Promise<Response> {
    return this.request('GET', path, undefined, referer);
  }

  /** Posts a form (`application/x-www-form-urlencoded`), as the example's HTML forms do. */
  post(path: string, form: Record<string, string> = {}): Promise<Response> {
    return this.request('POST', path, new URLSearchParams(form).toString());
  }

  /** The identity idstitch sees for this browser (`GET /identity`, which tracks no event). */
  async identity(): Promise<{ deviceId?: string; userId?: string; distinctId?: string }> {
    return (await this.get('/identity')).json() as Promise<{
      deviceId?: string;
      userId?: string;
      distinctId?: string;
    }>;
  }

  /** The cookie names this browser holds. */
  cookieNames(): string[] {
    return [...this.jar.keys()];
  }

  private async request(method: string, path: string, form?: string, referer?: string): Promise<Response> {
    let current = { method, path, form };
    for (let hop = 0; hop <= 5; hop += 1) {
      // A page load, as a browser sends it: idstitch reads these for mixpanel-browser's default properties.
      const headers: Record<string, string> = {
        'user-agent': DEMO_USER_AGENT,
        accept: 'text/html',
        // Node's fetch forces Sec-Fetch-Mode to cors; the destination says it is a page load.
        'sec-fetch-dest': 'document',
      };
      if (referer !== undefined && hop === 0) headers.referer = referer;
      const cookie = [...this.jar].map(([name, value]) => `${name}=${value}`).join('; ');
      if (cookie !== '') headers.cookie = cookie;
      if (current.form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
      const response = await fetch(new URL(current.path, this.origin), {
        method: current.method,
        headers,
        body: current.form,
        redirect: 'manual',
      });
      this.visits.push({
        method: current.method,
        path: current.path,
        status: response.status,
        ...(current.form ? { form: current.form } : {}),
      });
      this.store(response.headers.getSetCookie());
      const location = response.headers.get('location');
      if (!REDIRECTS.has(response.status) || location === null) return response;
      await response.arrayBuffer(); // finish this response before the next request
      const keepMethod = response.status === 307 || response.status === 308;
      const next = new URL(location, new URL(current.path, this.origin));
      current = {
        method: keepMethod ? current.method : 'GET',
        path: `${next.pathname}${next.search}`,
        form: keepMethod ? current.form : undefined,
      };
    }
    throw new Error(`too many redirects from ${method} ${path}`);
  }

  /** Keeps `name=value` of each Set-Cookie line; an expired or `Max-Age=0` cookie is deleted. */
  private store(lines: readonly string[]): void {
    for (const line of lines) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((attribute) => {
        const [key = '', raw = ''] = attribute.split('=', 2).map((part) => part.trim());
        if (key.toLowerCase() === 'max-age') return Number(raw) <= 0;
        if (key.toLowerCase() === 'expires') return Date.parse(raw) <= Date.now();
        return false;
      });
      if (expired || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }
}
