import 'reflect-metadata';
import { IDSTITCH, type Idstitch, IdstitchModule, type IdstitchModuleOptions } from '@idstitch/nestjs';
import { type INestApplication, type LoggerService, Module } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import session from 'express-session';
import { SessionUserGuard } from './session-user.guard.js';
import { ShopController } from './shop.controller.js';
import { ShopService } from './shop.service.js';

export interface ExampleAppOptions {
  /** idstitch options; the example supplies the cookie secret when none is given. */
  idstitch?: IdstitchModuleOptions;
  /** Secret for express-session and the device cookie. */
  secret?: string;
  /** Nest's logger; `false` silences it. */
  logger?: LoggerService | false;
}

/** Builds the shop (not listening yet): idstitch mounts itself when Nest initialises the app. */
export async function createApp(
  options: ExampleAppOptions = {},
): Promise<{ app: INestApplication; engine: Idstitch }> {
  const secret = options.secret ?? 'example-secret-change-me-in-production';

  @Module({
    imports: [IdstitchModule.forRoot({ cookie: { secret }, ...options.idstitch })],
    controllers: [ShopController],
    providers: [ShopService, { provide: APP_GUARD, useClass: SessionUserGuard }],
  })
  class AppModule {}

  const app = await NestFactory.create(
    AppModule,
    options.logger === undefined ? {} : { logger: options.logger },
  );
  app.use(session({ secret, resave: false, saveUninitialized: false, name: 'shop.sid' }));
  return { app, engine: app.get<Idstitch>(IDSTITCH) };
}
