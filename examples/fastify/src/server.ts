import { resolve } from 'node:path';
import { LocalSink, MixpanelSink } from '@idstitch/core';
import { createApp } from './app.js';

/**
 * Starts the example shop on `PORT` (default 3003). With no configuration it records to
 * `.idstitch/events.ndjson` in the folder it runs in (no Mixpanel account needed) and prints the
 * `pnpm idstitch report` command that shows how Mixpanel would stitch it.
 */
const port = Number(process.env.PORT ?? 3003);
const eventsFile = resolve('.idstitch/events.ndjson');
const app = await createApp({
  secret: process.env.IDSTITCH_COOKIE_SECRET,
  // With a project token, send to Mixpanel; otherwise record locally.
  idstitch: {
    sink: process.env.MIXPANEL_TOKEN
      ? new MixpanelSink({ token: process.env.MIXPANEL_TOKEN })
      : new LocalSink({ path: eventsFile }),
  },
});
await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' });
console.log(
  `idstitch example shop (Fastify) on http://localhost:${app.server.address() && (app.server.address() as { port: number }).port}`,
);
if (!process.env.MIXPANEL_TOKEN) {
  console.log(`Recording to ${eventsFile}; to see how Mixpanel would stitch it, run from the repository:`);
  console.log(`  pnpm idstitch report ${eventsFile}`);
}

// app.close() runs idstitch's onClose hook, which flushes and closes the sink.
async function shutdown() {
  await app.close();
  process.exit(0);
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
