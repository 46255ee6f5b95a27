import { serve } from '@hono/node-server';
import { createJourneyApp } from './journey-app.js';

/** The journey app on Node through `@hono/node-server`; prints its port. */
const app = createJourneyApp(process.env);
serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) =>
  console.log(`listening on ${info.port}`),
);
process.once('SIGTERM', () => process.exit(0));
