import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { IdstitchOptionsError } from '@idstitch/core';
import { isLoopbackHost } from './access.js';
import { type InspectorOptions, inspector } from './handler.js';

export interface InspectorServerOptions extends Omit<InspectorOptions, 'allowInProduction'> {
  /** Port to listen on; `0` picks a free one. Default 4747. */
  port?: number;
  /**
   * Interface to listen on. Default `127.0.0.1` (this machine only). Any other address needs a `token`,
   * because the page shows every recorded user's events.
   */
  host?: string;
}

export interface RunningInspector {
  /** The page's address, e.g. `http://127.0.0.1:4747/`. */
  url: string;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/**
 * Serves the inspector on its own port (what `idstitch inspect` runs). On a loopback address, requests must
 * name a loopback host too, so a web page cannot reach the inspector through DNS rebinding.
 */
export async function startInspector(options: InspectorServerOptions = {}): Promise<RunningInspector> {
  const { port = 4747, host = '127.0.0.1', ...rest } = options;
  const local = LOOPBACK.has(host);
  if (!local && rest.token === undefined && rest.authorize === undefined) {
    throw new IdstitchOptionsError(
      'host',
      `is ${host}, which other machines can reach, and no token is set`,
      'Keep the default 127.0.0.1, or pass a token (idstitch inspect --token <secret>)',
    );
  }
  const handler = inspector(rest);
  const server = createServer((request, response) => {
    if (local && !isLoopbackHost(request.headers.host)) {
      response.writeHead(421, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('idstitch inspector: open it as http://127.0.0.1 or http://localhost.\n');
      return;
    }
    handler(request, response);
  });
  await new Promise<void>((ready, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      ready();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}/`,
    close: async () => {
      const closed = new Promise<void>((done) => server.close(() => done()));
      const released = handler.close();
      server.closeAllConnections();
      await Promise.all([closed, released]);
    },
  };
}
