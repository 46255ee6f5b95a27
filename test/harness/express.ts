import { createServer } from 'node:http';
import { MemorySink } from '@idstitch/core';
import { idstitch } from '@idstitch/express';
import express from 'express';
import session from 'express-session';
import type { AdapterHarness, RunningApp } from './types.js';

declare module 'express-session' {
  interface SessionData {
    userId?: string;
  }
}

/** Express 5 with express-session: login writes `req.session.userId`, the adapter's default resolver reads it. */
export const expressHarness: AdapterHarness = {
  name: 'express',
  async start(options = {}): Promise<RunningApp> {
    const sink = new MemorySink();
    const app = express();
    app.use(session({ secret: 'session-secret-for-tests', resave: false, saveUninitialized: false }));
    app.use(
      idstitch({ sink, cookie: { secret: 'a-test-secret-of-32-characters!!' }, ...(options as object) }),
    );
    app.get('/track/:event', (req, res) => {
      req.tracker.track(req.params.event);
      res.sendStatus(204);
    });
    app.post('/track-body/:event', express.json(), (req, res) => {
      req.tracker.track(req.params.event, req.body as Record<string, unknown>);
      res.sendStatus(204);
    });
    app.post('/login/:user', (req, res) => {
      req.session.userId = req.params.user;
      res.sendStatus(204);
    });
    app.post('/logout', (req, res) => {
      delete req.session.userId;
      res.sendStatus(204);
    });
    app.post('/reset', (req, res) => {
      req.tracker.reset();
      res.sendStatus(204);
    });
    app.get('/whoami', (req, res) => {
      res.json(req.tracker.identity);
    });
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, sink, close: () => new Promise((resolve) => server.close(() => resolve())) };
  },
};
