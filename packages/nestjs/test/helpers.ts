import type { Server } from 'node:http';
import type { INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { afterEach } from 'vitest';

export type Platform = 'express' | 'fastify';
export const platforms: Platform[] = ['express', 'fastify'];

const apps: INestApplication[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

/** Boots `module` on a real socket; closed after the test. */
export async function boot(
  module: Type,
  platform: Platform,
): Promise<{ app: INestApplication; server: Server }> {
  const app = await NestFactory.create(
    module,
    platform === 'express' ? new ExpressAdapter() : new FastifyAdapter(),
    { logger: false },
  );
  apps.push(app);
  await app.listen(0, '127.0.0.1');
  return { app, server: app.getHttpServer() as Server };
}

/** Closes an app booted with {@link boot} now (to assert on shutdown). */
export async function closeNow(app: INestApplication): Promise<void> {
  apps.splice(apps.indexOf(app), 1);
  await app.close();
}
