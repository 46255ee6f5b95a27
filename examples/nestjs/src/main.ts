import { MixpanelSink } from '@idstitch/core';
import { createApp } from './app.js';

/**
 * Starts the example shop. With no configuration it records to `.idstitch/events.ndjson` (no Mixpanel account
 * needed; `pnpm idstitch report` shows how Mixpanel would stitch it). Ctrl-C closes the app, which flushes the
 * sink (IdstitchModule's onApplicationShutdown).
 */
const { app } = await createApp({
  secret: process.env.IDSTITCH_SECRET,
  // With a project token, send to Mixpanel; otherwise record locally.
  idstitch: process.env.MIXPANEL_TOKEN
    ? { sink: new MixpanelSink({ token: process.env.MIXPANEL_TOKEN }) }
    : {},
});
app.enableShutdownHooks();
await app.listen(Number(process.env.PORT ?? 3000));
console.log(`idstitch example shop (NestJS) on ${await app.getUrl()}`);
