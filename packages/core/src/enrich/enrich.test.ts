import { describe, expect, it } from 'vitest';
import { createIdstitch } from '../idstitch.js';
import type { IdstitchOptions } from '../options.js';
import { fakeRequestPort, MemorySink } from '../testing/index.js';
import { DEFAULT_REDACTED_PARAMS, queryParam, redactUrl } from './url.js';
import { parseUserAgent, UserAgentCache, vendorFromUserAgent } from './user-agent.js';

const SAFARI_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';
const CHROME_WIN =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';
const SAMSUNG =
  'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36';

describe('user agent', () => {
  it('names browsers, versions, OS and devices as mixpanel-browser does', () => {
    expect(parseUserAgent(SAFARI_IPHONE)).toEqual({
      browser: 'Mobile Safari',
      browserVersion: 17.5,
      os: 'iOS',
      device: 'iPhone',
      blocked: false,
    });
    expect(parseUserAgent(CHROME_WIN)).toMatchObject({
      browser: 'Chrome',
      browserVersion: 126,
      os: 'Windows',
      device: '',
    });
    expect(parseUserAgent(SAMSUNG)).toMatchObject({
      browser: 'Samsung Internet',
      browserVersion: 25,
      os: 'Android',
    });
    expect(
      parseUserAgent('Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)').blocked,
    ).toBe(true);
  });

  it('derives navigator.vendor from the engine', () => {
    expect(vendorFromUserAgent(SAFARI_IPHONE)).toBe('Apple Computer, Inc.');
    expect(vendorFromUserAgent(CHROME_WIN)).toBe('Google Inc.');
    expect(
      vendorFromUserAgent('Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'),
    ).toBe('');
  });

  it('caches a bounded number of user agents', () => {
    const cache = new UserAgentCache(2);
    cache.lookup('a');
    cache.lookup('b');
    cache.lookup('a');
    cache.lookup('c');
    expect(cache.size).toBe(2);
    expect(cache.hits).toBe(1);
    cache.lookup('x'.repeat(600));
    expect(cache.size).toBe(2);
  });
});

describe('urls', () => {
  it('reads query parameters with the SDK rules', () => {
    expect(queryParam('https://a.test/?utm_source=news+letter&x=1', 'utm_source')).toBe('news letter');
    expect(queryParam('https://a.test/?xutm_source=1', 'utm_source')).toBe('');
    expect(queryParam('https://a.test/?q=%E0%A4', 'q')).toBe('%E0%A4');
  });

  it('redacts secret parameters and keeps everything else byte for byte', () => {
    const redacted = new Set(DEFAULT_REDACTED_PARAMS);
    expect(
      redactUrl('https://a.test/cb?utm_source=x&code=abc&page=2&reset_token=t#frag', 'redact', redacted),
    ).toBe('https://a.test/cb?utm_source=x&code=REDACTED&page=2&reset_token=REDACTED#frag');
    expect(redactUrl('https://a.test/p?a=1', 'strip', redacted)).toBe('https://a.test/p');
  });
});

describe('browser properties on server events', () => {
  function setup(options: IdstitchOptions = {}) {
    const sink = new MemorySink();
    const engine = createIdstitch(
      { sink, onError: () => {}, ...options },
      { resolveUserId: () => undefined },
    );
    return { sink, engine };
  }

  it('stamps mixpanel-browser defaults on a page load, query kept and secrets redacted', () => {
    const { sink, engine } = setup();
    const scope = engine.handle(
      fakeRequestPort({
        path: '/landing?utm_source=google&utm_campaign=spring&gclid=abc&token=s3cret',
        secure: true,
        headers: {
          host: 'shop.example.com',
          'user-agent': SAFARI_IPHONE,
          referer: 'https://www.google.com/search?q=running+shoes',
          'sec-fetch-mode': 'navigate',
        },
      }),
    );
    scope.tracker.track('Viewed');
    expect(sink.events[0]!.properties).toMatchObject({
      $browser: 'Mobile Safari',
      $browser_version: 17.5,
      $os: 'iOS',
      $device: 'iPhone',
      $current_url:
        'https://shop.example.com/landing?utm_source=google&utm_campaign=spring&gclid=abc&token=REDACTED',
      $referrer: 'https://www.google.com/search?q=running+shoes',
      $referring_domain: 'www.google.com',
      $search_engine: 'google',
      mp_keyword: 'running shoes',
      utm_source: 'google',
      utm_campaign: 'spring',
      gclid: 'abc',
      $initial_referrer: 'https://www.google.com/search?q=running+shoes',
      $initial_referring_domain: 'www.google.com',
    });
    const ref = scope.settle().find((write) => write.name === 'idstitch_device_ref');
    expect(ref?.value).toBe('https://www.google.com/search?q=running+shoes');
  });

  it('keeps first touch per device: a later visit sends the stored one, $direct when there was none', () => {
    const { sink, engine } = setup();
    const first = engine.handle(fakeRequestPort({ headers: { accept: 'text/html', host: 'a.test' } }));
    first.tracker.track('one');
    const writes = first.settle();
    const cookies = Object.fromEntries(writes.map((write) => [write.name, write.value]));
    expect(cookies.idstitch_device_ref).toBe('$direct');
    const later = engine.handle(
      fakeRequestPort({
        cookies,
        headers: { accept: 'text/html', referer: 'https://news.test/a', host: 'a.test' },
      }),
    );
    later.tracker.track('two');
    expect(sink.events[1]!.properties).toMatchObject({
      $initial_referrer: '$direct',
      $initial_referring_domain: '$direct',
      $referrer: 'https://news.test/a',
    });
  });

  it("uses the page's URL for a fetch from that page, and never stores it as first touch", () => {
    const { sink, engine } = setup();
    const scope = engine.handle(
      fakeRequestPort({
        path: '/api/cart',
        headers: { host: 'a.test', referer: 'https://a.test/shop?utm_source=x', 'sec-fetch-mode': 'cors' },
      }),
    );
    scope.tracker.track('Added');
    const p = sink.events[0]!.properties;
    expect(p.$current_url).toBe('https://a.test/shop?utm_source=x');
    expect(p.utm_source).toBe('x');
    expect(p.$referrer).toBeUndefined();
    expect(p.$initial_referrer).toBeUndefined();
    expect(scope.settle().some((write) => write.name === 'idstitch_device_ref')).toBe(false);
  });

  it('drops events from crawlers mixpanel-browser blocks, counted as bot', () => {
    const { sink, engine } = setup();
    const scope = engine.handle(
      fakeRequestPort({ headers: { 'user-agent': 'Mozilla/5.0 (compatible; bingbot/2.0)' } }),
    );
    scope.tracker.track('Viewed');
    expect(sink.events).toHaveLength(0);
    expect(sink.dropped.bot).toBe(1);
    const kept = setup({ requestProperties: { dropBots: false } });
    kept.engine.handle(fakeRequestPort({ headers: { 'user-agent': 'bingbot' } })).tracker.track('Viewed');
    expect(kept.sink.events).toHaveLength(1);
  });
});
