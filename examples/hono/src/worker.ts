import type { ExecutionContext } from 'hono';
import { createApp } from './app.js';
import { type ExampleEnv, environment, mixpanelSink } from './config.js';

/**
 * The example shop as a Cloudflare Workers module (workerd, `wrangler dev`, `wrangler deploy`). Uses only
 * `@idstitch/core/web`: bundle it for a neutral platform, no `nodejs_compat` needed. The app (and with it
 * idstitch's engine and sink) is made per request, from that request's bindings: workerd lets no promise cross
 * from one request to another, so a sink shared by the isolate would have one request await a delivery that
 * another started. idstitch hands each request's flush to `executionCtx.waitUntil`: the events are delivered
 * after the response is sent, inside the request that made them.
 *
 * Workers have no `NODE_ENV`: idstitch counts them as production and refuses to start without
 * `IDSTITCH_COOKIE_SECRET` (a secret: `wrangler secret put IDSTITCH_COOKIE_SECRET`), unless the binding
 * `IDSTITCH_ENVIRONMENT = "development"` says otherwise. Without `MIXPANEL_TOKEN`, messages are printed.
 */
export default {
  fetch(request: Request, env: ExampleEnv, context: ExecutionContext): Response | Promise<Response> {
    const sink = mixpanelSink(env);
    const shop = createApp({
      secret: env.IDSTITCH_COOKIE_SECRET,
      idstitch: { ...(sink ? { sink } : {}), ...environment(env) },
    });
    return shop.app.fetch(request, env, context);
  },
};
