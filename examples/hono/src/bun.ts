import { ConsoleSink } from '@idstitch/core/web';
import { createApp } from './app.js';
import { environment, mixpanelSink } from './config.js';

/** The part of Bun's global this file uses (the example does not depend on `@types/bun`). */
declare const Bun: {
  env: Record<string, string | undefined>;
  serve(options: {
    port: number;
    hostname: string;
    fetch: (request: Request, server: unknown) => Response | Promise<Response>;
  }): { port: number; stop(closeActiveConnections?: boolean): Promise<void> };
};

/**
 * The example shop on Bun: `bun --conditions=@idstitch/source src/bun.ts` from examples/hono (`pnpm start:bun`).
 * `Bun.serve` hands its server to `app.fetch`, so idstitch reads the client address as Hono's `getConnInfo` does.
 * Without `MIXPANEL_TOKEN`, messages are printed.
 */
const env = Bun.env;
const shop = createApp({
  secret: env.IDSTITCH_COOKIE_SECRET,
  idstitch: { sink: mixpanelSink(env) ?? new ConsoleSink(), ...environment(env) },
});
const server = Bun.serve({
  port: Number(env.PORT ?? 3004),
  hostname: env.HOST ?? '127.0.0.1',
  fetch: shop.app.fetch,
});
console.log(`idstitch example shop (Hono on Bun) on http://localhost:${server.port}`);

async function shutdown() {
  await server.stop();
  await shop.close();
  process.exit(0);
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
