/**
 * One app of the request-overhead scenario in its own process: `server.js <framework> <variant> <ingestPort>`.
 * The runner marks the start and end of the measured window over IPC; each mark returns this process's CPU
 * time, the requests it has answered and the event-loop delay since the previous mark.
 */
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { installFatalHandlers, onCommand, peakRss, reply } from '../lib/child.js';
import type { App } from './common.js';
import type { Framework, Variant } from './variants.js';

installFatalHandlers();

const [framework, variantArg, ingestPortArg] = process.argv.slice(2) as [Framework, Variant, string];
/** A `-tls` variant is its base variant talking HTTPS to the ingest server (the runner sets the environment). */
const variant = variantArg.replace(/-tls$/, '') as Variant;
const ingestPort = Number(ingestPortArg);

async function build(): Promise<App> {
  switch (framework) {
    case 'express':
      return (await import('./express-app.js')).expressApp(variant, ingestPort);
    case 'koa':
      return (await import('./koa-app.js')).koaApp(variant, ingestPort);
    case 'nest':
      return (await import('./nest-app.js')).nestApp(variant, ingestPort);
    case 'fastify':
      return (await import('./fastify-app.js')).fastifyApp(variant, ingestPort);
    default:
      throw new Error(`unknown framework ${String(framework)}`);
  }
}

const app = await build();
let requests = 0;
let non200 = 0;
app.server.on('request', (_request, response) => {
  requests += 1;
  response.on('finish', () => {
    if (response.statusCode !== 200) non200 += 1;
  });
});
app.server.keepAliveTimeout = 30_000;
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();

onCommand(async (message) => {
  switch (message.type) {
    case 'mark': {
      const cpu = process.cpuUsage();
      const snapshot = {
        type: 'mark',
        cpuUs: cpu.user + cpu.system,
        userUs: cpu.user,
        requests,
        non200,
        loopDelayP99Ms: delay.percentile(99) / 1e6,
        loopDelayMeanMs: delay.mean / 1e6,
        rss: process.memoryUsage.rss(),
      };
      delay.reset();
      return snapshot;
    }
    case 'close': {
      const sdk = await app.close();
      app.server.close();
      reply({ type: 'closed', sdk, peakRss: peakRss() });
      setTimeout(() => process.exit(0), 50);
      return undefined;
    }
    default:
      return undefined;
  }
});

app.server.listen(0, '127.0.0.1', () => {
  reply({ type: 'ready', port: (app.server.address() as AddressInfo).port });
});
