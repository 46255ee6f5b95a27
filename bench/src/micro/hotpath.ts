/**
 * The identity hot path of one request, without HTTP: cookie parse, signature check, identity reconcile and
 * event build (tinybench). Each round runs in a fresh process. `hotpath.js <timeMs>`.
 *
 * The request is that of the overhead scenario: a signed-in, returning visitor whose signed device cookie is
 * already linked to the user, one `track()` with two properties. The sink counts and discards, so that only
 * idstitch's own work per request is measured (delivery is the delivery scenario's subject).
 */
import { randomUUID } from 'node:crypto';
import { createIdstitch, DeviceCookieCodec, type OutgoingMessage, type Sink } from '@idstitch/core';
import { cookieValues as coreCookieValues, nodeRequestPort } from '@idstitch/core/node';
import { parse as parseCookie } from 'cookie';
import { Bench } from 'tinybench';
import { installFatalHandlers, reply } from '../lib/child.js';
import { COOKIE_SECRET, TOKEN, USER_AGENT } from '../lib/fixtures.js';

installFatalHandlers();

const timeMs = Number(process.argv[2] ?? 1000);
const USER = 'user-42';
const codec = new DeviceCookieCodec([COOKIE_SECRET]);
const deviceId = randomUUID();
const cookieValue = codec.encode({ deviceId, userTag: codec.tagUser(USER, deviceId) });
const headers = {
  host: '127.0.0.1:3000',
  cookie: `_ga=GA1.1.123456789.1700000000; idstitch_device=${cookieValue}; theme=dark`,
  'x-user-id': USER,
  'user-agent': USER_AGENT,
  referer: 'http://127.0.0.1:3000/pricing?utm_source=bench',
};
const request = { headers, url: '/checkout?step=2' };
const PROPERTIES = { plan: 'pro', section: 'home' };

let written = 0;
let sink: OutgoingMessage | undefined;
const nullSink: Sink = {
  write(message) {
    written += 1;
    sink = message;
  },
  flush: async () => {},
  close: async () => {},
};
const engine = createIdstitch(
  { sink: nullSink, cookie: { secret: COOKIE_SECRET } },
  { resolveUserId: (req: typeof request) => req.headers['x-user-id'] },
);
const port = () => nodeRequestPort(request, { ip: '127.0.0.1', secure: false, path: request.url });

let sinkHole: unknown;
const tasks: Array<[string, () => void]> = [
  [
    'no idstitch (the same request, nothing tracked)',
    () => {
      sinkHole = request.headers['x-user-id'];
    },
  ],
  [
    'hand-written: cookie.parse + event object + JSON + base64 (what `mixpanel.track` sends)',
    () => {
      const cookies = parseCookie(request.headers.cookie);
      const device = cookies.idstitch_device ?? randomUUID();
      const data = {
        event: 'Page Viewed',
        properties: {
          distinct_id: request.headers['x-user-id'],
          $device_id: device,
          $user_id: request.headers['x-user-id'],
          $pathname: request.url,
          $user_agent: request.headers['user-agent'],
          ...PROPERTIES,
          token: TOKEN,
          mp_lib: 'node',
        },
      };
      sinkHole = Buffer.from(JSON.stringify(data)).toString('base64');
    },
  ],
  [
    'idstitch: cookie parse',
    () => {
      sinkHole = coreCookieValues(request.headers.cookie, 'idstitch_device');
    },
  ],
  [
    'idstitch: cookie parse + verify (HMAC)',
    () => {
      sinkHole = codec.decode(coreCookieValues(request.headers.cookie, 'idstitch_device')[0] as string);
    },
  ],
  [
    'idstitch: parse + verify + reconcile (request scope, identity, settle; no event)',
    () => {
      const scope = engine.handle(port());
      sinkHole = scope.tracker.identity;
      sinkHole = scope.settle();
    },
  ],
  [
    'idstitch: parse + verify + reconcile + event build (1 `track()`, settle)',
    () => {
      const scope = engine.handle(port());
      scope.tracker.track('Page Viewed', PROPERTIES);
      sinkHole = scope.settle();
    },
  ],
];

const bench = new Bench({ time: timeMs, warmupTime: Math.min(500, timeMs), warmupIterations: 2000 });
for (const [name, fn] of tasks) bench.add(name, fn);
await bench.run();

const results = bench.tasks.map((task) => {
  const result = task.result as {
    state: string;
    latency?: { mean: number; p50: number; p99: number; rme: number; samplesCount: number };
    throughput?: { mean: number };
  };
  if (!result.latency) throw new Error(`task "${task.name}" did not complete (${result.state})`);
  return {
    name: task.name,
    meanNs: result.latency.mean * 1e6,
    p50Ns: result.latency.p50 * 1e6,
    p99Ns: result.latency.p99 * 1e6,
    rmePercent: result.latency.rme,
    samples: result.latency.samplesCount,
    opsPerSecond: result.throughput?.mean ?? Number.NaN,
  };
});
if (written === 0 || sink === undefined || sinkHole === undefined)
  throw new Error('the tracked path wrote nothing');
reply({ type: 'result', results });
setTimeout(() => process.exit(0), 20);
