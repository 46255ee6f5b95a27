import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import { MemorySink } from '@idstitch/core';
import { idstitch } from '@idstitch/fastify';
import Fastify from 'fastify';
import type { AdapterHarness, RunningApp } from './types.js';

declare module 'fastify' {
  interface Session {
    userId?: string;
  }
}

/** Fastify 5 with @fastify/cookie and @fastify/session: login writes `request.session.userId`. */
export const fastifyHarness: AdapterHarness = {
  name: 'fastify',
  async start(options = {}): Promise<RunningApp> {
    const sink = new MemorySink();
    const app = Fastify();
    await app.register(fastifyCookie);
    await app.register(fastifySession, {
      secret: 'a-fastify-session-secret-of-32-chars!',
      cookie: { secure: false },
      saveUninitialized: false,
    });
    await app.register(idstitch, {
      sink,
      cookie: { secret: 'a-test-secret-of-32-characters!!' },
      ...(options as object),
    });
    app.get<{ Params: { event: string } }>('/track/:event', async (request, reply) => {
      request.tracker.track(request.params.event);
      return reply.code(204).send();
    });
    app.post<{ Params: { user: string } }>('/login/:user', async (request, reply) => {
      request.session.userId = request.params.user;
      return reply.code(204).send();
    });
    app.post('/logout', async (request, reply) => {
      request.session.userId = undefined;
      return reply.code(204).send();
    });
    app.post('/reset', async (request, reply) => {
      request.tracker.reset();
      return reply.code(204).send();
    });
    app.get('/whoami', async (request) => request.tracker.identity);
    await app.listen({ port: 0, host: '127.0.0.1' });
    return { server: app.server, sink, close: () => app.close() };
  },
};
