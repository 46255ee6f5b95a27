import 'reflect-metadata';
import type { Server } from 'node:http';
import { getTracker, IdstitchModule, InjectTracker, type Tracker } from '@idstitch/nestjs';
import {
  Controller,
  type DynamicModule,
  Get,
  Inject,
  Module,
  type NestMiddleware,
  Req,
  Scope,
} from '@nestjs/common';
import { NestFactory, REQUEST } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import cookieParser from 'cookie-parser';
import type { NextFunction, Request, Response } from 'express';
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

const MIXPANEL = 'bench:mixpanel';
const REQUEST_TRACKER = 'bench:request-tracker';

type Official = ReturnType<typeof officialMixpanel>;

@Controller()
class BareController {
  @Get()
  hello(): string {
    return HELLO;
  }
}

/** The recommended way: the singleton `Tracker`, which finds the request's tracker through AsyncLocalStorage. */
@Controller()
class IdstitchController {
  constructor(@InjectTracker() private readonly tracker: Tracker) {}

  @Get()
  hello(): string {
    this.tracker.track(EVENT, PROPERTIES);
    return HELLO;
  }
}

/**
 * The classic Nest way to reach per-request state: a `Scope.REQUEST` provider built from `REQUEST`. It makes
 * this controller request-scoped too, so Nest builds the provider and the controller for every request.
 */
@Controller()
class RequestScopeController {
  constructor(@Inject(REQUEST_TRACKER) private readonly tracker: Tracker) {}

  @Get()
  hello(): string {
    this.tracker.track(EVENT, PROPERTIES);
    return HELLO;
  }
}

@Controller()
class HandwrittenController {
  constructor(@Inject(MIXPANEL) private readonly mixpanel: Official) {}

  @Get()
  hello(@Req() req: Request & { deviceId: string }): string {
    const userId = signedInUser(req.headers);
    this.mixpanel.track(EVENT, {
      distinct_id: userId ?? `$device:${req.deviceId}`,
      $device_id: req.deviceId,
      ...(userId ? { $user_id: userId } : {}),
      $pathname: req.path,
      $user_agent: req.get('user-agent'),
      ...PROPERTIES,
    });
    return HELLO;
  }
}

class DeviceIdMiddleware implements NestMiddleware {
  use(req: Request & { deviceId?: string }, res: Response, next: NextFunction): void {
    let deviceId = req.cookies?.device_id as string | undefined;
    if (!deviceId) {
      deviceId = uuidv4();
      res.cookie('device_id', deviceId, { maxAge: 365 * 24 * 3600 * 1000, httpOnly: true, sameSite: 'lax' });
    }
    req.deviceId = deviceId;
    next();
  }
}

function rootModule(
  variant: Variant,
  ingestPort: number,
): { module: DynamicModule; close?: () => unknown; flush?: () => Promise<void> } {
  @Module({})
  class Root {}
  switch (variant) {
    case 'bare':
      return { module: { module: Root, controllers: [BareController] } };
    case 'idstitch':
    case 'request-scope': {
      const sink = idstitchSink(ingestPort);
      const idstitch = IdstitchModule.forRoot({
        sink,
        cookie: idstitchCookie,
        resolveUserId: (req) => signedInUser((req as unknown as Request).headers),
      });
      const module: DynamicModule =
        variant === 'idstitch'
          ? { module: Root, imports: [idstitch], controllers: [IdstitchController] }
          : {
              module: Root,
              imports: [idstitch],
              controllers: [RequestScopeController],
              providers: [
                {
                  provide: REQUEST_TRACKER,
                  scope: Scope.REQUEST,
                  inject: [REQUEST],
                  useFactory: (req: Request) => getTracker(req),
                },
              ],
            };
      return { module, close: () => sink.stats(), flush: () => sink.flush() };
    }
    case 'handwritten': {
      const mixpanel = officialMixpanel(ingestPort);
      return {
        module: {
          module: Root,
          controllers: [HandwrittenController],
          providers: [{ provide: MIXPANEL, useValue: mixpanel }],
        },
        close: () => mixpanel.close(),
        flush: () => mixpanel.flush(),
      };
    }
    default:
      throw new Error(`nest has no variant ${variant}`);
  }
}

export async function nestApp(variant: Variant, ingestPort: number): Promise<App> {
  const { module, close, flush } = rootModule(variant, ingestPort);
  const app = await NestFactory.create(module, new ExpressAdapter(), { logger: false });
  if (variant === 'handwritten') {
    app.use(cookieParser());
    const deviceIds = new DeviceIdMiddleware();
    app.use(deviceIds.use.bind(deviceIds));
  }
  await app.init();
  return {
    server: app.getHttpServer() as Server,
    flush: async () => {
      await flush?.();
    },
    async close() {
      if (variant === 'handwritten') {
        const stats = await (close?.() as Promise<Record<string, unknown>>);
        await app.close();
        return stats;
      }
      // IdstitchModule flushes and closes the sink on app.close().
      await app.close();
      return ((await close?.()) ?? {}) as Record<string, unknown>;
    },
  };
}
