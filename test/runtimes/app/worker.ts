import type { ExecutionContext } from 'hono';
import { createJourneyApp, type JourneyEnv } from './journey-app.js';

/**
 * The journey app as a Workers module. Made per request, as a Worker must: workerd refuses promises that cross
 * requests, so a sink shared by the isolate would await in one request a delivery another request started. Each
 * request's own sink is flushed by idstitch in `executionCtx.waitUntil`.
 */
export default {
  fetch(request: Request, env: JourneyEnv, context: ExecutionContext) {
    return createJourneyApp(env).fetch(request, env, context);
  },
};
