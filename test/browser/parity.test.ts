/**
 * Parity of idstitch's browser properties with the real mixpanel-browser: a corpus of real user agents
 * (the maintained top-user-agents list plus iOS, iPad, Android, Samsung and in-app browsers) × referrers ×
 * landing URLs, each loaded once in headless Chromium (User-Agent and navigator.vendor overridden per page).
 * The SDK's event and idstitch's server event of the same page load are compared property by property;
 * the table is printed and every property must match for at least 99 % of the corpus.
 */
import type { FakeMixpanel, StoredEvent } from '@idstitch/fake-mixpanel';
import type { Browser } from 'playwright-core';
import topUserAgents from 'top-user-agents';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CAMPAIGN_KEYWORDS, CLICK_IDS } from '../../packages/core/src/enrich/url.js';
import { launchChromium, type Shop, startFakeMixpanel, startShop, TOKEN, waitFor } from './harness.js';

const EXTRA_USER_AGENTS = [
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (iPod touch; CPU iPhone OS 15_8 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.8 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/462.0.0.41.106;FBBV/577212345;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 330.0.3.22.93 (iPhone15,3; iOS 17_4; en_US; en; scale=3.00; 1290x2796; 599567891)',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.113 Mobile Safari/537.36',
  'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0',
  'Mozilla/5.0 (Linux; Android 13; M2101K6G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.64',
  'Mozilla/5.0 (Linux; U; Android 10; en-US; RMX2030 Build/QKQ1.200209.002) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.108 UCBrowser/13.4.0.1306 Mobile Safari/537.36',
  'Mozilla/5.0 (Linux; Android 12; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/123.0.6312.118 Mobile Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/110.0.0.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Whale/3.25.232.19 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:109.0) Gecko/20100101 Firefox/115.0',
  'Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
];

const REFERRERS = [
  '',
  'https://www.google.com/search?q=running+shoes',
  'https://www.bing.com/search?q=idstitch&form=QBLH',
  'https://news.example.org/article?id=7',
  'https://search.yahoo.com/search?p=trail+shoes',
];
const LANDINGS = [
  '',
  '?utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_content=hero&utm_term=shoes&utm_id=42&gclid=abc123&fbclid=f1&ttclid=t9',
];
const PROPERTIES = [
  '$browser',
  '$browser_version',
  '$os',
  '$device',
  '$current_url',
  '$referrer',
  '$referring_domain',
  '$initial_referrer',
  '$initial_referring_domain',
  '$search_engine',
  'mp_keyword',
  ...CAMPAIGN_KEYWORDS,
  ...CLICK_IDS,
];

/**
 * `navigator.vendor` of the real browser behind a UA, independent of idstitch's rule: WebKit (every iOS
 * browser, Safari) reports Apple, Blink (Chrome, Edge, Opera, Samsung, WebViews) Google, Gecko nothing.
 */
function realVendor(userAgent: string): string {
  if (/iPhone|iPad|iPod/.test(userAgent)) return 'Apple Computer, Inc.';
  if (/Gecko\/|Firefox\//.test(userAgent) && !/AppleWebKit/.test(userAgent)) return '';
  if (/Chrome\/|Chromium\/|Android/.test(userAgent)) return 'Google Inc.';
  if (/AppleWebKit/.test(userAgent)) return 'Apple Computer, Inc.';
  return '';
}

let browser: Browser;
let fake: FakeMixpanel;
let shop: Shop;

beforeAll(async () => {
  [browser, fake] = await Promise.all([launchChromium(), startFakeMixpanel({ token: TOKEN })]);
  // Without the cookie interop: the server's properties stand on their own.
  shop = await startShop({
    fake,
    sdk: { batch_requests: false },
    idstitch: { mixpanelBrowserCookie: undefined },
  });
});
afterAll(async () => {
  await shop?.close();
  await browser?.close();
  await fake?.close();
});

it('server events carry the browser properties mixpanel-browser sends, for >= 99 % of the corpus', {
  timeout: 300_000,
}, async () => {
  const agents = [...new Set([...(topUserAgents as string[]), ...EXTRA_USER_AGENTS])];
  expect(agents.length).toBeGreaterThanOrEqual(100);
  const context = await browser.newContext();
  const tab = await context.newPage();
  const cdp = await context.newCDPSession(tab);
  // navigator.vendor follows the overridden UA by the rule above, before any page script runs.
  await context.addInitScript(
    `Object.defineProperty(Navigator.prototype, 'vendor', { configurable: true, get: () => (${realVendor.toString()})(navigator.userAgent) });`,
  );
  const cases: string[] = [];
  for (const [i, agent] of agents.entries()) {
    for (const [k, [referrer, landing]] of [
      [REFERRERS[i % REFERRERS.length], LANDINGS[0]],
      [REFERRERS[(i + 2) % REFERRERS.length], LANDINGS[1]],
    ].entries()) {
      const key = `/page/c${i}-${k}`;
      cases.push(key);
      await context.clearCookies();
      await cdp.send('Emulation.setUserAgentOverride', { userAgent: agent });
      await cdp.send('Page.navigate', {
        url: `${shop.origin}${key}${landing}`,
        ...(referrer ? { referrer, referrerPolicy: 'unsafeUrl' as const } : {}),
      });
      // The page is done once the SDK's event for it reached the fake (it sends at once: batch_requests off).
      await waitFor(fake, (events) =>
        events.some((event) => event.properties.mp_lib === 'web' && event.properties.case === key),
      );
    }
  }
  await shop.flush();
  const byCase = (lib: string) => {
    const map = new Map<string, StoredEvent>();
    for (const event of fake.events)
      if (event.properties.mp_lib === lib) map.set(String(event.properties.case), event);
    return map;
  };
  // The SDK sends right away (batch_requests: false); wait until every page's event is in.
  for (let i = 0; i < 500 && byCase('web').size < cases.length; i += 1)
    await new Promise((r) => setTimeout(r, 20));
  const sdk = byCase('web');
  const server = byCase('idstitch');
  expect(sdk.size).toBe(cases.length);
  expect(server.size).toBe(cases.length);
  const rows: [string, number, string[]][] = PROPERTIES.map((property) => {
    const mismatches: string[] = [];
    for (const key of cases) {
      const a = sdk.get(key)!.properties[property];
      const b = server.get(key)!.properties[property];
      if (JSON.stringify(a) !== JSON.stringify(b))
        mismatches.push(`${key}: sdk ${JSON.stringify(a)} server ${JSON.stringify(b)}`);
    }
    return [property, 1 - mismatches.length / cases.length, mismatches];
  });
  const table = [
    `| property | match rate (${cases.length} page loads, ${agents.length} user agents) |`,
    '| --- | --- |',
    ...rows.map(([property, rate]) => `| \`${property}\` | ${(rate * 100).toFixed(1)} % |`),
  ].join('\n');
  console.log(`mixpanel-browser parity\n${table}`);
  for (const [property, rate, mismatches] of rows) {
    expect({ property, rate, first: mismatches.slice(0, 3) }).toEqual({
      property,
      rate: expect.any(Number),
      first: mismatches.slice(0, 3),
    });
    expect(rate, `${property}: ${mismatches.slice(0, 3).join('; ')}`).toBeGreaterThanOrEqual(0.99);
  }
  await context.close();
});
