import { ConsoleSink } from '@idstitch/core/web';
import { createApp } from './app.js';
import { environment, mixpanelSink } from './config.js';

/** The part of Deno's global this file uses (the example does not depend on Deno's types). */
declare const Deno: {
  env: { toObject(): Record<string, string> };
  serve(
    options: { port: number; hostname: string; onListen(address: { port: number }): void },
    handler: (request: Request, info: unknown) => Response | Promise<Response>,
  ): { shutdown(): Promise<void> };
  addSignalListener(signal: 'SIGTERM' | 'SIGINT', handler: () => void): void;
  exit(code: number): never;
};

/**
 * The example shop on Deno: `deno run --allow-net --allow-env --allow-read --sloppy-imports --conditions=@idstitch/source src/deno.ts`
 * from examples/hono (`pnpm start:deno`). `Deno.serve` hands its connection info to `app.fetch`, so idstitch reads
 * the client address as Hono's `getConnInfo` does. Without `MIXPANEL_TOKEN`, messages are printed.
 */
const env = Deno.env.toObject();
const shop = createApp({
  secret: env.IDSTITCH_COOKIE_SECRET,
  idstitch: { sink: mixpanelSink(env) ?? new ConsoleSink(), ...environment(env) },
});
const server = Deno.serve(
  {
    port: Number(env.PORT ?? 3004),
    hostname: env.HOST ?? '127.0.0.1',
    onListen: ({ port }) => console.log(`idstitch example shop (Hono on Deno) on http://localhost:${port}`),
  },
  shop.app.fetch,
);

async function shutdown() {
  await server.shutdown();
  await shop.close();
  Deno.exit(0);
}
Deno.addSignalListener('SIGTERM', shutdown);
Deno.addSignalListener('SIGINT', shutdown);
