import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import session from 'express-session';
import { harnessModule, listen, MemorySink } from './nest-app.js';
import type { AdapterHarness, RunningApp } from './types.js';

/** Nest on Express with express-session; a guard maps the session's user to `request.user`. */
export const nestExpressHarness: AdapterHarness = {
  name: 'nest-express',
  async start(options = {}): Promise<RunningApp> {
    const sink = new MemorySink();
    const app = await NestFactory.create<NestExpressApplication>(
      harnessModule(sink, options),
      new ExpressAdapter(),
      { logger: false },
    );
    app.use(session({ secret: 'session-secret-for-tests', resave: false, saveUninitialized: false }));
    return listen(app, sink);
  },
};
