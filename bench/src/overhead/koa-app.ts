import { createServer } from 'node:http';
import { idstitch } from '@idstitch/koa';
import Koa from 'koa';
import { v4 as uuidv4 } from 'uuid';
import {
  type App,
  EVENT,
  HELLO,
  idstitchCookie,
  idstitchSink,
  officialMixpanel,
  PROPERTIES,
  signedInUser,
} from './common.js';
import type { Variant } from './variants.js';

export function koaApp(variant: Variant, ingestPort: number): App {
  const app = new Koa();
  let close: () => Promise<Record<string, unknown>> = async () => ({});
  let flush: () => Promise<void> = async () => {};

  if (variant === 'bare') {
    app.use((ctx) => {
      ctx.body = HELLO;
    });
  } else if (variant === 'idstitch') {
    const middleware = idstitch({
      sink: idstitchSink(ingestPort),
      cookie: idstitchCookie,
      resolveUserId: (ctx) => signedInUser(ctx.headers),
    });
    app.use(middleware);
    app.use((ctx) => {
      ctx.state.tracker.track(EVENT, PROPERTIES);
      ctx.body = HELLO;
    });
    flush = () => middleware.idstitch.flush();
    close = async () => {
      await middleware.idstitch.close(30_000);
      const sink = middleware.idstitch.options.sink as unknown as { stats(): Record<string, unknown> };
      return sink.stats();
    };
  } else if (variant === 'handwritten') {
    // The same recipe with Koa's built-in cookie API in place of cookie-parser.
    const mixpanel = officialMixpanel(ingestPort);
    app.use((ctx) => {
      let deviceId = ctx.cookies.get('device_id');
      if (!deviceId) {
        deviceId = uuidv4();
        ctx.cookies.set('device_id', deviceId, {
          maxAge: 365 * 24 * 3600 * 1000,
          httpOnly: true,
          sameSite: 'lax',
        });
      }
      const userId = signedInUser(ctx.headers);
      mixpanel.track(EVENT, {
        distinct_id: userId ?? `$device:${deviceId}`,
        $device_id: deviceId,
        ...(userId ? { $user_id: userId } : {}),
        $pathname: ctx.path,
        $user_agent: ctx.get('user-agent'),
        ...PROPERTIES,
      });
      ctx.body = HELLO;
    });
    close = () => mixpanel.close();
    flush = () => mixpanel.flush();
  } else {
    throw new Error(`koa has no variant ${variant}`);
  }
  return { server: createServer(app.callback()), close, flush };
}
