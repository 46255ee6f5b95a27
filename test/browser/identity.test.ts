/**
 * One identity with the real mixpanel-browser: the SDK runs in headless Chromium on pages of a test shop
 * that runs idstitch; both send to the fake Mixpanel, and the combined stream is resolved as Simplified ID
 * Merge would resolve it.
 */
import type { FakeMixpanel, StoredEvent } from '@idstitch/fake-mixpanel';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  launchChromium,
  resolveStream,
  type Shop,
  startFakeMixpanel,
  startShop,
  TOKEN,
  waitFor,
} from './harness.js';

const COOKIE = `mp_${TOKEN}_mixpanel`;
/** The page's `window`, as far as these tests read it (the tests are type-checked without DOM types). */
interface WebStorage {
  localStorage: { getItem(key: string): string | null };
}
let browser: Browser;
let fake: FakeMixpanel;

beforeAll(async () => {
  [browser, fake] = await Promise.all([launchChromium(), startFakeMixpanel({ token: TOKEN })]);
});
afterAll(async () => {
  await browser?.close();
  await fake?.close();
});

/** One browser profile visiting the shop; each visit waits for the SDK's event to reach the fake. */
async function visitor(shop: Shop, origin = shop.origin) {
  const context: BrowserContext = await browser.newContext();
  const tab = await context.newPage();
  const visit = async (path: string) => {
    const before = fake.events.filter((event) => event.event === 'Browser Page').length;
    await tab.goto(`${origin}${path}`);
    await tab.waitForFunction(() => (globalThis as { __ready?: boolean }).__ready === true);
    await waitFor(fake, (events) => events.filter((event) => event.event === 'Browser Page').length > before);
    await shop.flush();
  };
  const sdkState = async () => {
    const cookie = (await context.cookies()).filter((c) => c.name === COOKIE);
    return cookie.map((c) => ({ domain: c.domain, state: JSON.parse(decodeURIComponent(c.value)) }));
  };
  return { context, tab, visit, sdkState };
}

// Both reach /track (the server sink has no import credentials here): tell them apart by library.
const browserEvents = (events: readonly StoredEvent[]) =>
  events.filter((event) => event.properties.mp_lib === 'web');
const serverEvents = (events: readonly StoredEvent[]) =>
  events.filter((event) => event.properties.mp_lib === 'idstitch');

describe('one identity with mixpanel-browser (cookie persistence)', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await startShop({ fake });
  });
  afterAll(() => shop.close());

  it('anonymous visit: the SDK and the server send the same $device_id', async () => {
    fake.clear();
    const v = await visitor(shop);
    await v.visit('/page/home');
    await v.visit('/page/pricing');
    const devices = new Set(fake.events.map((event) => event.properties.$device_id));
    expect(browserEvents(fake.events)).toHaveLength(2);
    expect(serverEvents(fake.events)).toHaveLength(2);
    expect(devices.size).toBe(1);
    const [cookie] = await v.sdkState();
    expect(cookie?.state.$device_id).toBe([...devices][0]);
    await v.context.close();
  });

  it('login: client and server events, before and after, end in one cluster; the SDK learns the user', async () => {
    fake.clear();
    const v = await visitor(shop);
    await v.visit('/page/home');
    await v.visit('/login?user=alice');
    await v.visit('/page/account');
    const resolution = resolveStream(fake.events);
    expect(new Set(resolution.events.map((event) => event.resolved))).toEqual(new Set(['alice']));
    const after = browserEvents(fake.events).filter((event) => event.properties.case !== '/page/home');
    expect(after.length).toBeGreaterThan(0);
    for (const event of after) {
      expect(event.properties).toMatchObject({ $user_id: 'alice', distinct_id: 'alice' });
    }
    const [cookie] = await v.sdkState();
    expect(cookie?.state).toMatchObject({ $user_id: 'alice', distinct_id: 'alice' });
    await v.context.close();
  });

  it('logout, then a second user on the same browser: never merged into the first', async () => {
    fake.clear();
    const v = await visitor(shop);
    await v.visit('/page/home');
    await v.visit('/login?user=alice');
    await v.visit('/logout');
    const [afterLogout] = await v.sdkState();
    expect(afterLogout?.state.$user_id).toBeUndefined();
    expect(afterLogout?.state.distinct_id).toBe(`$device:${afterLogout?.state.$device_id}`);
    await v.visit('/page/browse');
    await v.visit('/login?user=bob');
    await v.visit('/page/bob-home');
    const resolution = resolveStream(fake.events);
    const alice = resolution.clusters.find((cluster) => cluster.id === 'alice');
    const bob = resolution.clusters.find((cluster) => cluster.id === 'bob');
    expect(alice && bob).toBeTruthy();
    expect(resolution.operations.filter((operation) => operation.outcome === 'refused')).toEqual([]);
    // Everything from the logout on (browser and server) belongs to bob.
    const logoutAt = resolution.events.findIndex(
      (event) =>
        event.event === 'Server Page' &&
        event.userId === null &&
        event.index > 0 &&
        resolution.events.slice(0, event.index).some((e) => e.userId === 'alice'),
    );
    expect(logoutAt).toBeGreaterThan(0);
    for (const event of resolution.events.slice(logoutAt)) expect(event.resolved).toBe('bob');
    for (const index of alice!.events) expect(resolution.events[index]!.userId ?? 'alice').toBe('alice');
    await v.context.close();
  });

  it('a browser that had SDK state before it reached the server: the server adopts it', async () => {
    fake.clear();
    const v = await visitor(shop);
    await v.visit('/static');
    const [sdk] = await v.sdkState();
    const sdkDevice = sdk?.state.$device_id as string;
    expect(sdkDevice).toMatch(/^[0-9a-f-]{36}$/);
    await v.visit('/page/home');
    expect(serverEvents(fake.events).map((event) => event.properties.$device_id)).toEqual([sdkDevice]);
    expect(new Set(fake.events.map((event) => event.properties.$device_id))).toEqual(new Set([sdkDevice]));
    await v.context.close();
  });
});

describe('cookie domain forms, as the SDK writes them', () => {
  it('cross_subdomain_cookie (the SDK default): one cookie for .example.com, reset reaches the SDK', async () => {
    const shop = await startShop({ fake });
    fake.clear();
    const v = await visitor(shop, `http://app.example.com:${shop.port}`);
    await v.visit('/page/home');
    const firstDevice = fake.events[0]!.properties.$device_id;
    await v.visit('/login?user=carol');
    await v.visit('/logout');
    const cookies = await v.sdkState();
    expect(cookies.map((cookie) => cookie.domain)).toEqual(['.example.com']);
    expect(cookies[0]!.state.$user_id).toBeUndefined();
    const devices = serverEvents(fake.events).map((event) => event.properties.$device_id);
    expect(devices.at(-1)).toBe(cookies[0]!.state.$device_id);
    expect(devices.at(-1)).not.toBe(firstDevice);
    expect(browserEvents(fake.events).at(-1)!.properties.$device_id).toBe(devices.at(-1));
    await v.context.close();
    await shop.close();
  });

  it('host-only (cross_subdomain_cookie: false on both sides): one host-only cookie', async () => {
    const shop = await startShop({
      fake,
      sdk: { cross_subdomain_cookie: false },
      idstitch: { mixpanelBrowserCookie: { token: TOKEN, crossSubdomainCookie: false } },
    });
    fake.clear();
    const v = await visitor(shop, `http://app.example.com:${shop.port}`);
    await v.visit('/page/home');
    await v.visit('/login?user=dave');
    await v.visit('/page/account');
    const cookies = await v.sdkState();
    expect(cookies.map((cookie) => cookie.domain)).toEqual(['app.example.com']);
    expect(cookies[0]!.state).toMatchObject({ $user_id: 'dave' });
    expect(new Set(resolveStream(fake.events).events.map((event) => event.resolved))).toEqual(
      new Set(['dave']),
    );
    await v.context.close();
    await shop.close();
  });
});

describe("localStorage persistence: the server cannot read or write the SDK's state", () => {
  it('the SDK adopts the device and learns the user once, but a server reset needs reset() in the page', async () => {
    const shop = await startShop({ fake, sdk: { persistence: 'localStorage' }, snippet: true });
    fake.clear();
    const v = await visitor(shop);
    await v.visit('/page/home');
    // On init the SDK migrates the cookie the server wrote into localStorage (register_once).
    expect(new Set(fake.events.map((event) => event.properties.$device_id)).size).toBe(1);
    const stored = await v.tab.evaluate(
      (key) => (globalThis as unknown as WebStorage).localStorage.getItem(key),
      COOKIE,
    );
    expect(JSON.parse(stored ?? '{}').$device_id).toBe(fake.events[0]!.properties.$device_id);
    await v.visit('/login?user=erin');
    await v.visit('/page/account');
    expect(new Set(resolveStream(fake.events).events.map((event) => event.resolved))).toEqual(
      new Set(['erin']),
    );
    // What cannot work: register_once keeps the SDK's stored identity, so the server's reset does not reach it.
    await v.visit('/logout');
    const stale = browserEvents(fake.events).at(-1)!;
    expect(stale.properties.$user_id).toBe('erin');
    // The page must call mixpanel.reset() itself (the snippet the shop renders on /page-reset).
    await v.visit('/page-reset');
    await v.visit('/page/later');
    const resolution = resolveStream(fake.events);
    const later = resolution.events.filter((event) => event.event === 'Browser Page').at(-1)!;
    expect(later.resolved).not.toBe('erin');
    await v.context.close();
    await shop.close();
  });
});
