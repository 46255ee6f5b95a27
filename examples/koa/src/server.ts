import { createServer } from 'node:http';
import { createApp } from './app.js';

/**
 * Starts the example shop. With no configuration it records to `.idstitch/events.ndjson` (no Mixpanel account
 * needed; `pnpm idstitch report` shows how Mixpanel would stitch it).
 */
const port = Number(process.env.PORT ?? 3000);
const { app, engine } = createApp({ secret: process.env.IDSTITCH_SECRET });
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
