import { resolve } from 'node:path';
import { LocalSink, MixpanelSink } from '@idstitch/core';
import { createApp } from './app.js';

/**
 * Starts the example shop on `PORT` (default 3002). With no configuration it records to
 * `.idstitch/events.ndjson` in the folder it runs in (no Mixpanel account needed) and prints the
 * `pnpm idstitch report` command that shows how Mixpanel would stitch it. Ctrl-C or SIGTERM closes the app,
 * which flushes the sink (IdstitchModule's onApplicationShutdown), and exits 0 (Nest's own shutdown hooks
 * would re-raise the signal, which pnpm reports as a failed run).
 */
const port = Number(process.env.PORT ?? 3002);
const eventsFile = resolve('.idstitch/events.ndjson');
const { app } = await createApp({
  secret: process.env.IDSTITCH_COOKIE_SECRET,
  // With a project token, send to Mixpanel; otherwise record locally.
  idstitch: {
    sink: process.env.MIXPANEL_TOKEN
      ? new MixpanelSink({ token: process.env.MIXPANEL_TOKEN })
      : new LocalSink({ path: eventsFile }),
  },
});
await app.listen(port);
const { port: listening } = app.getHttpServer().address() as { port: number };
console.log(`idstitch example shop (NestJS) on http://localhost:${listening}`);
if (!process.env.MIXPANEL_TOKEN) {
  console.log(`Recording to ${eventsFile}; to see how Mixpanel would stitch it, run from the repository:`);
  console.log(`  pnpm idstitch report ${eventsFile}`);
}

async function shutdown() {
  await app.close();
  process.exit(0);
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
