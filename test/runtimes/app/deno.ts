import { createJourneyApp } from './journey-app.js';

declare const Deno: {
  env: { toObject(): Record<string, string> };
  serve(
    options: { port: number; hostname: string; onListen(address: { port: number }): void },
    handler: (request: Request, info: unknown) => Response | Promise<Response>,
  ): unknown;
};

/** The journey app on Deno (`Deno.serve`, which hands its connection info to `app.fetch`); prints its port. */
const app = createJourneyApp(Deno.env.toObject());
Deno.serve(
  { port: 0, hostname: '127.0.0.1', onListen: ({ port }) => console.log(`listening on ${port}`) },
  app.fetch,
);
