import type { Server } from 'node:http';
import type { IdstitchOptions, MemorySink } from '@idstitch/core';

/**
 * An app under test. Every adapter's harness serves the same routes, so one journey table drives them all:
 * `GET /track/:event` tracks an event;
 * `POST /track-body/:event` tracks one with the JSON request body as its properties (as careless apps do); `POST /login/:user` signs the user in through the framework's session;
 * `POST /logout` signs out; `POST /reset` calls `tracker.reset()`; `GET /whoami` answers the tracker's identity.
 */
export interface RunningApp {
  server: Server;
  sink: MemorySink;
  close(): Promise<void>;
}

export interface AdapterHarness {
  name: string;
  start(options?: IdstitchOptions<never>): Promise<RunningApp>;
}
