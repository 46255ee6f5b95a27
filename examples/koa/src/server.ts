import { createServer } from 'node:http';
import { MixpanelSink } from '@idstitch/core';
import { createApp } from './app.js';

/**
 * Starts the example shop. With no configuration it records to `.idstitch/events.ndjson` (no Mixpanel account
 * needed; `pnpm idstitch report` shows how Mixpanel would stitch it).
 */
const port = Number(process.env.PORT ?? 3000);
const { app, engine } = createApp({
  secret: process.env.IDSTITCH_SECRET,
  // With a project token, send to Mixpanel; otherwise record locally.
  idstitch: process.env.MIXPANEL_TOKEN
    ? { sink: new MixpanelSink({ token: process.env.MIXPANEL_TOKEN }) }
    : {},
});
const server = createServer(app.callback()).listen(port, () => {
  console.log(
    `idstitch example shop (Koa) on http://localhost:${(server.address() as { port: number }).port}`,
  );
});

async function shutdown() {
  server.close();
  await engine.close(5_000);
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
