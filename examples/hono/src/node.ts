import { resolve } from 'node:path';
import { serve } from '@hono/node-server';
import { LocalSink } from '@idstitch/core';
import { createApp } from './app.js';
import { environment, mixpanelSink } from './config.js';

/**
 * Starts the example shop on Node (`@hono/node-server`) on `PORT` (default 3004). With no configuration it records
 * to `.idstitch/events.ndjson` in the folder it runs in (no Mixpanel account needed) and prints the
 * `pnpm idstitch report` command that shows how Mixpanel would stitch it.
 */
const port = Number(process.env.PORT ?? 3004);
const eventsFile = resolve('.idstitch/events.ndjson');
const shop = createApp({
  secret: process.env.IDSTITCH_COOKIE_SECRET,
  idstitch: {
    // With a project token, send to Mixpanel; otherwise record locally.
    sink: mixpanelSink(process.env) ?? new LocalSink({ path: eventsFile }),
    ...environment(process.env),
  },
});
const server = serve({ fetch: shop.app.fetch, port, hostname: process.env.HOST ?? '127.0.0.1' }, (info) => {
  console.log(`idstitch example shop (Hono on Node) on http://localhost:${info.port}`);
  if (!process.env.MIXPANEL_TOKEN) {
    console.log(`Recording to ${eventsFile}; to see how Mixpanel would stitch it, run from the repository:`);
    console.log(`  pnpm idstitch report ${eventsFile}`);
  }
});

// Stop taking requests, then deliver what is queued and close the sink.
async function shutdown() {
  await new Promise((done) => server.close(done));
  await shop.close();
  process.exit(0);
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
