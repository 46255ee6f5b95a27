import { createServer } from 'node:http';
import { idstitch } from '@idstitch/express';
import cookieParser from 'cookie-parser';
import express from 'express';
import { v4 as uuidv4 } from 'uuid';
import {
  type App,
  deviceIdCookie,
  EVENT,
  HELLO,
  idstitchCookie,
  idstitchSink,
  nullSink,
  officialMixpanel,
  PROPERTIES,
  posthogClient,
  segmentClient,
  signedInUser,
} from './common.js';
import type { Variant } from './variants.js';

export function expressApp(variant: Variant, ingestPort: number): App {
  const app = express();
  let close: () => Promise<Record<string, unknown>> = async () => ({});
  let flush: () => Promise<void> = async () => {};

  if (variant === 'bare') {
    app.get('/', (_req, res) => {
      res.send(HELLO);
    });
  } else if (variant === 'idstitch' || variant === 'idstitch-nullsink' || variant === 'idstitch-notrack') {
    const middleware = idstitch({
      sink: variant === 'idstitch-nullsink' ? nullSink() : idstitchSink(ingestPort),
      cookie: idstitchCookie,
      resolveUserId: (req) => signedInUser(req.headers),
    });
    app.use(middleware);
    app.get('/', (req, res) => {
      if (variant !== 'idstitch-notrack') req.tracker.track(EVENT, PROPERTIES);
      res.send(HELLO);
    });
    flush = () => middleware.idstitch.flush();
    close = async () => {
      await middleware.idstitch.close(30_000);
      const sink = middleware.idstitch.options.sink as unknown as { stats(): Record<string, unknown> };
      return sink.stats();
    };
  } else if (variant === 'handwritten') {
    // Mixpanel's server-side guide: a device-ID cookie through cookie-parser, a UUID when it is missing, and
    // the official client's `track` in the handler with the identity assembled by hand.
    const mixpanel = officialMixpanel(ingestPort);
    app.use(cookieParser());
    app.use((req, res, next) => {
      let deviceId = req.cookies.device_id as string | undefined;
      if (!deviceId) {
        deviceId = uuidv4();
        res.cookie('device_id', deviceId, {
          maxAge: 365 * 24 * 3600 * 1000,
          httpOnly: true,
          sameSite: 'lax',
        });
      }
      (req as typeof req & { deviceId: string }).deviceId = deviceId;
      next();
    });
    app.get('/', (req, res) => {
      const deviceId = (req as typeof req & { deviceId: string }).deviceId;
      const userId = signedInUser(req.headers);
      mixpanel.track(EVENT, {
        distinct_id: userId ?? `$device:${deviceId}`,
        $device_id: deviceId,
        ...(userId ? { $user_id: userId } : {}),
        $pathname: req.path,
        $user_agent: req.get('user-agent'),
        ...PROPERTIES,
      });
      res.send(HELLO);
    });
    close = () => mixpanel.close();
    flush = () => mixpanel.flush();
  } else if (variant === 'posthog' || variant === 'segment') {
    const posthog = variant === 'posthog' ? posthogClient(ingestPort) : undefined;
    const segment = variant === 'segment' ? segmentClient(ingestPort) : undefined;
    app.use(cookieParser());
    app.get('/', (req, res) => {
      const deviceId = deviceIdCookie(req, res);
      const userId = signedInUser(req.headers);
      const properties = { $pathname: req.path, $user_agent: req.get('user-agent'), ...PROPERTIES };
      if (posthog) posthog.track(userId ?? deviceId, EVENT, { $device_id: deviceId, ...properties });
      else segment?.track(userId, deviceId, EVENT, properties);
      res.send(HELLO);
    });
    const client = (posthog ?? segment) as {
      flush(): Promise<void>;
      close(): Promise<Record<string, unknown>>;
    };
    flush = () => client.flush();
    close = () => client.close();
  } else {
    throw new Error(`express has no variant ${variant}`);
  }
  return { server: createServer(app), close, flush };
}
