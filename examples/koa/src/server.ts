import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { LocalSink, MixpanelSink } from '@idstitch/core';
import { createApp } from './app.js';

/**
 * Starts the example shop on `PORT` (default 3001). With no configuration it records to
 * `.idstitch/events.ndjson` in the folder it runs in (no Mixpanel account needed) and prints the
 * `pnpm idstitch report` command that shows how Mixpanel would stitch it. Ctrl-C or SIGTERM closes the server,
 * flushes and exits 0.
 */
const port = Number(process.env.PORT ?? 3001);
const eventsFile = resolve('.idstitch/events.ndjson');
const { app, engine } = createApp({
  secret: process.env.IDSTITCH_COOKIE_SECRET,
  // With a project token, send to Mixpanel; otherwise record locally.
  idstitch: {
    sink: process.env.MIXPANEL_TOKEN
      ? new MixpanelSink({ token: process.env.MIXPANEL_TOKEN })
      : new LocalSink({ path: eventsFile }),
  },
});
const server = createServer(app.callback()).listen(port, () => {
  console.log(
    `idstitch example shop (Koa) on http://localhost:${(server.address() as { port: number }).port}`,
  );
  if (!process.env.MIXPANEL_TOKEN) {
    console.log(`Recording to ${eventsFile}; to see how Mixpanel would stitch it, run from the repository:`);
    console.log(`  pnpm idstitch report ${eventsFile}`);
  }
});

async function shutdown() {
  server.close();
  server.closeAllConnections();
  await engine.close(5_000);
  process.exit(0);
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
