import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { harnessModule, listen, MemorySink } from './nest-app.js';
import type { AdapterHarness, RunningApp } from './types.js';

/** Nest on Fastify with @fastify/session; a guard maps the session's user to `request.user`. */
export const nestFastifyHarness: AdapterHarness = {
  name: 'nest-fastify',
  async start(options = {}): Promise<RunningApp> {
    const sink = new MemorySink();
    const app = await NestFactory.create<NestFastifyApplication>(
      harnessModule(sink, options),
      new FastifyAdapter(),
      { logger: false },
    );
    await app.register(fastifyCookie);
    await app.register(fastifySession, {
      secret: 'a-fastify-session-secret-of-32-chars!',
      cookie: { secure: false },
      saveUninitialized: false,
    });
    return listen(app, sink);
  },
};
