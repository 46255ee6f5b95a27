/** The frameworks and variants of the request-overhead scenario, in table order. */
export const FRAMEWORKS = ['express', 'koa', 'nest', 'fastify'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

export const VARIANTS = {
  express: ['bare', 'idstitch', 'handwritten'],
  koa: ['bare', 'idstitch', 'handwritten'],
  nest: ['bare', 'idstitch', 'request-scope', 'handwritten'],
  fastify: ['bare', 'idstitch'],
} as const satisfies Record<Framework, readonly string[]>;
export type Variant =
  | 'bare'
  | 'idstitch'
  | 'request-scope'
  | 'handwritten'
  /** Diagnostics for the breakdown: the middleware without any `track()`, and `track()` into a sink that discards. */
  | 'idstitch-notrack'
  | 'idstitch-nullsink'
  /** The idstitch and hand-written variants with the ingest server on HTTPS, as Mixpanel's API is. */
  | 'idstitch-tls'
  | 'handwritten-tls'
  /** Instruction counts only: the peers' SDKs per request on Express, with the hand-written device cookie. */
  | 'posthog'
  | 'segment';

/** Extra Express variants of the full run that split idstitch's cost into middleware, event and delivery. */
export const DIAGNOSTIC_VARIANTS: Partial<Record<Framework, readonly Variant[]>> = {
  express: ['idstitch-notrack', 'idstitch-nullsink', 'idstitch-tls', 'handwritten-tls'],
};

export const FRAMEWORK_LABELS: Record<Framework, string> = {
  express: 'Express 5',
  koa: 'Koa 3',
  nest: 'NestJS 12 on Express',
  fastify: 'Fastify 5',
};

export const VARIANT_LABELS: Record<Framework, Partial<Record<Variant, string>>> = {
  express: {
    bare: 'bare Express (baseline)',
    idstitch: 'idstitch: identified user, 1 `track()` per request → MixpanelSink',
    handwritten: 'hand-written: cookie-parser + uuid + `mixpanel.track` per request',
    'idstitch-notrack': 'diagnostic: idstitch middleware, no `track()`',
    'idstitch-nullsink': 'diagnostic: idstitch, 1 `track()` into a sink that discards',
    'idstitch-tls': 'idstitch as above, ingest server on HTTPS (as Mixpanel is)',
    'handwritten-tls': 'hand-written as above, ingest server on HTTPS (as Mixpanel is)',
    posthog: 'cookie-parser + uuid + posthog-node `capture()` per request (batched by the SDK)',
    segment: 'cookie-parser + uuid + @segment/analytics-node `track()` per request (batched by the SDK)',
  },
  koa: {
    bare: 'bare Koa (baseline)',
    idstitch: 'idstitch: identified user, 1 `track()` per request → MixpanelSink',
    handwritten: 'hand-written: `ctx.cookies` + uuid + `mixpanel.track` per request',
  },
  nest: {
    bare: 'bare Nest (baseline)',
    idstitch: 'idstitch: `IdstitchModule`, injected `Tracker` (AsyncLocalStorage), 1 `track()`',
    'request-scope': 'same tracker through a `Scope.REQUEST` provider',
    handwritten: 'hand-written: cookie-parser + uuid + `mixpanel.track` per request',
  },
  fastify: {
    bare: 'bare Fastify (baseline)',
    idstitch: 'idstitch: `app.register(idstitch)`, identified user, 1 `track()` per request → MixpanelSink',
  },
};

/** The one request every variant serves, with the headers of a signed-in returning visitor. */
export const ROUTE = '/';
export const USER_ID = 'user-42';
export const HANDWRITTEN_DEVICE_ID = '0b8c6d3e-9a4f-4e21-8c55-1f2d3e4a5b6c';
