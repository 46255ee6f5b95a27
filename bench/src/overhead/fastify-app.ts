import { createServer } from 'node:http';
import { idstitch } from '@idstitch/fastify';
import Fastify from 'fastify';
import { type App, EVENT, HELLO, idstitchCookie, idstitchSink, PROPERTIES, signedInUser } from './common.js';
import type { Variant } from './variants.js';

/**
 * Fastify 5 on a server the harness listens on (`serverFactory`): bare, or with the idstitch plugin and one
 * `track()` per request. The ratio of the two, in the same run, is the plugin's overhead.
 */
export async function fastifyApp(variant: Variant, ingestPort: number): Promise<App> {
  const server = createServer();
  const app = Fastify({
    serverFactory: (handler) => server.on('request', handler),
  });
  let close: () => Promise<Record<string, unknown>> = async () => ({});
  let flush: () => Promise<void> = async () => {};

  if (variant === 'bare') {
    app.get('/', async () => HELLO);
  } else if (variant === 'idstitch') {
    await app.register(idstitch, {
      sink: idstitchSink(ingestPort),
      cookie: idstitchCookie,
      resolveUserId: (request) => signedInUser(request.headers),
    });
    app.get('/', async (request) => {
      request.tracker.track(EVENT, PROPERTIES);
      return HELLO;
    });
    flush = () => app.idstitch.flush();
    close = async () => {
      await app.idstitch.close(30_000);
      const sink = app.idstitch.options.sink as unknown as { stats(): Record<string, unknown> };
      return sink.stats();
    };
  } else {
    throw new Error(`fastify has no variant ${variant}`);
  }
  await app.ready();
  return { server, close, flush };
}
