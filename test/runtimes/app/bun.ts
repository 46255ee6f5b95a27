import { createJourneyApp } from './journey-app.js';

declare const Bun: {
  env: Record<string, string | undefined>;
  serve(options: { port: number; hostname: string; fetch: (request: Request, server: unknown) => unknown }): {
    port: number;
  };
};

/** The journey app on Bun (`Bun.serve`, which hands its server to `app.fetch`); prints its port. */
const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: createJourneyApp(Bun.env).fetch });
console.log(`listening on ${server.port}`);
