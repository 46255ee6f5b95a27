/**
 * Cost of mixpanel-browser's default properties on server events (`requestProperties.browser`), per
 * request: one `engine.handle()` + one `track()` for a page load with a User-Agent, a search referrer and a
 * UTM-tagged URL, with enrichment off, on with the UA already cached (the usual case: a server sees a few
 * hundred distinct UAs), and on with a UA never seen before (cache miss: the full parse). Standalone:
 * `pnpm --filter @idstitch/bench exec tsx --conditions=@idstitch/source src/micro/enrich.ts [timeMs]`.
 */
import { createIdstitch, type IdstitchOptions, type Sink } from '@idstitch/core';
import { nodeRequestPort } from '@idstitch/core/node';
import { Bench } from 'tinybench';
import { COOKIE_SECRET } from '../lib/fixtures.js';

const timeMs = Number(process.argv[2] ?? 1000);
const USER_AGENT =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';
const url = '/landing?utm_source=google&utm_medium=cpc&utm_campaign=spring&gclid=abc123';
const headers: Record<string, string> = {
  host: 'shop.example.com',
  'user-agent': USER_AGENT,
  referer: 'https://www.google.com/search?q=running+shoes',
  'sec-fetch-mode': 'navigate',
  accept: 'text/html',
};

let written = 0;
const sink: Sink = {
  write() {
    written += 1;
  },
  flush: async () => {},
  close: async () => {},
};

function engineWith(options: IdstitchOptions<{ headers: Record<string, string> }>) {
  return createIdstitch(
    { sink, onError: () => {}, cookie: { secret: COOKIE_SECRET }, ...options },
    { resolveUserId: () => undefined },
  );
}

const off = engineWith({ requestProperties: { browser: false } });
const on = engineWith({});
let unseen = 0;

function oneRequest(engine: ReturnType<typeof engineWith>, request: { headers: Record<string, string> }) {
  const scope = engine.handle(nodeRequestPort(request, { ip: undefined, secure: true, path: url }));
  scope.tracker.track('Page Viewed', { page: 'landing' });
  scope.settle();
}

const bench = new Bench({ time: timeMs, warmupTime: Math.min(timeMs, 500) });
bench
  .add('browser properties off', () => oneRequest(off, { headers }))
  .add('on, UA cached (hit)', () => oneRequest(on, { headers }))
  .add('on, UA never seen (miss)', () => {
    unseen += 1;
    oneRequest(on, { headers: { ...headers, 'user-agent': `${USER_AGENT} Build/${unseen}` } });
  });
await bench.run();
const mean = (name: string) =>
  (bench.getTask(name)?.result as { latency?: { mean: number } } | undefined)?.latency?.mean ?? NaN;
const base = mean('browser properties off');
for (const task of bench.tasks) {
  const ms = mean(task.name);
  console.log(
    `${task.name.padEnd(28)} ${(ms * 1000).toFixed(2)} µs/request (+${((ms - base) * 1000).toFixed(2)} µs vs off)`,
  );
}
if (written === 0) throw new Error('nothing was tracked');
