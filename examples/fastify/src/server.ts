import { MixpanelSink } from '@idstitch/core';
import { createApp } from './app.js';

/**
 * Starts the example shop. With no configuration it records to `.idstitch/events.ndjson` (no Mixpanel account
 * needed; `pnpm idstitch report` shows how Mixpanel would stitch it).
 */
const port = Number(process.env.PORT ?? 3003);
const app = await createApp({
  secret: process.env.IDSTITCH_SECRET,
  // With a project token, send to Mixpanel; otherwise record locally.
  idstitch: process.env.MIXPANEL_TOKEN
    ? { sink: new MixpanelSink({ token: process.env.MIXPANEL_TOKEN }) }
    : {},
});
await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' });
console.log(
  `idstitch example shop (Fastify) on http://localhost:${app.server.address() && (app.server.address() as { port: number }).port}`,
);

// app.close() runs idstitch's onClose hook, which flushes and closes the sink.
async function shutdown() {
  await app.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
