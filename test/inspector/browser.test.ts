/**
 * The inspector page in a real browser: Debian's Chromium driven by playwright-core (never a downloaded
 * browser) opens the page mounted in the example Express app, on the demo's traffic (the three flows of
 * Mixpanel's Simplified guide), then watches a mistake arrive live.
 *
 * IDSTITCH_UPDATE_SCREENSHOTS=1 also writes the README's screenshots (packages/inspector/docs/*.png).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LocalSink } from '@idstitch/core';
import { inspector, localFileSource } from '@idstitch/inspector';
import express from 'express';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoResult, runDemo } from '../../examples/express/src/demo-flows.js';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../chromium.js';

const root = resolve(import.meta.dirname, '../..');
const hasChromium = existsSync(CHROMIUM_PATH);
if (!hasChromium && process.env.CI)
  throw new Error(`${CHROMIUM_PATH} is missing: run scripts/ensure-chromium.sh`);

let dir: string;
let demo: DemoResult;
let server: Server;
let handler: ReturnType<typeof inspector>;
let context: BrowserContext;
let page: Page;
let url: string;

const idsOf = (flow: string) => demo.flows.find((f) => f.name === flow)!.ids;

beforeAll(async () => {
  if (!hasChromium) return;
  dir = mkdtempSync(join(tmpdir(), 'idstitch-inspector-'));
  // The page as the package ships it, built from ui/ into a scratch folder.
  const uiDir = join(dir, 'ui');
  await build({
    configFile: join(root, 'packages/inspector/ui/vite.config.mjs'),
    build: { outDir: uiDir, emptyOutDir: true },
    logLevel: 'warn',
  });
  demo = await runDemo({ file: join(dir, 'events.ndjson') });
  handler = inspector({ source: localFileSource(demo.file, { mode: 'simplified' }), uiDir });
  const app = express();
  app.use('/__idstitch', handler);
  server = app.listen(0, '127.0.0.1');
  await new Promise((ready) => server.once('listening', ready));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/__idstitch`;
  context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS],
    viewport: { width: 1280, height: 900 },
  });
  page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  await page.goto(url); // no trailing slash: the middleware redirects so the page's relative links work
  await page.locator('#status[data-state="live"]').waitFor();
  expect(errors).toEqual([]);
}, 120_000);

afterAll(async () => {
  await context?.close();
  handler?.close();
  await new Promise((done) => (server ? server.close(done) : done(undefined)));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The IDs drawn inside each cluster box: cluster ID → sorted node IDs. */
async function drawnClusters(): Promise<Record<string, string[]>> {
  return page.$$eval('svg .cluster', (boxes) =>
    Object.fromEntries(
      boxes.map((box) => [
        box.getAttribute('data-cluster'),
        [...box.querySelectorAll('.node')].map((node) => node.getAttribute('data-id')).sort(),
      ]),
    ),
  );
}

async function drawnLinks(): Promise<{ from: string; to: string; outcome: string; label: string }[]> {
  return page.$$eval('svg .edge', (edges) =>
    edges.map((edge) => ({
      from: edge.getAttribute('data-from') ?? '',
      to: edge.getAttribute('data-to') ?? '',
      outcome: edge.getAttribute('data-outcome') ?? '',
      label: edge.querySelector('.edge-label')?.textContent ?? '',
    })),
  );
}

describe.skipIf(!hasChromium)('the inspector page in Chromium, on the demo traffic', () => {
  it('draws the three guide flows as the guide draws their clusters, each link labelled with its event', async () => {
    expect(page.url()).toBe(`${url}/`);
    const signup = idsOf('New User Signup');
    const returning = idsOf('Returning User');
    const shared = idsOf('Multiple Users, One Device');
    const device = (id: string) => `$device:${id}`;
    const clusters = await drawnClusters();
    // New User Signup + Returning User: D1, D2 and U1 are inside one ID cluster.
    expect(returning.D1).toBe(signup.D1);
    expect(clusters[returning.U1!]).toEqual(
      [device(returning.D1!), device(returning.D2!), returning.U1].sort(),
    );
    // Multiple Users, One Device: D1+U1 and D2+U2, never D2 with U1.
    expect(clusters[shared.U1!]).toEqual([device(shared.D1!), shared.U1].sort());
    expect(clusters[shared.U2!]).toEqual([device(shared.D2!), shared.U2].sort());
    expect(Object.keys(clusters)).toHaveLength(3);

    const links = await drawnLinks();
    expect(links).toEqual(
      expect.arrayContaining([
        { from: device(signup.D1!), to: signup.U1!, outcome: 'merged', label: 'Identified' },
        { from: device(returning.D2!), to: returning.U1!, outcome: 'merged', label: 'Identified' },
        { from: device(shared.D1!), to: shared.U1!, outcome: 'merged', label: 'Identified' },
        { from: device(shared.D2!), to: shared.U2!, outcome: 'merged', label: 'Identified' },
      ]),
    );
    expect(links).toHaveLength(4);
    await expect(page.locator('#findings').textContent()).resolves.toContain('No findings');
    // Retroactive re-attribution is marked in the timeline: U1's anonymous page views before signing up.
    const firstRow = page.locator(`section.person[data-cluster="${signup.U1}"] tbody tr`).first();
    await expect(firstRow.locator('.badge.retro').textContent()).resolves.toBe('retroactive');
  });

  it('shows a mistake live: the refused link, why, and the QA finding pointing at its event', async () => {
    const shared = idsOf('Multiple Users, One Device');
    // Another client (say a mobile app without reset) sends U2's purchase on U1's device.
    const sink = new LocalSink({ path: demo.file });
    sink.write({
      kind: 'event',
      payload: {
        event: 'Order Placed',
        properties: {
          distinct_id: shared.U2!,
          $device_id: shared.D1!,
          $user_id: shared.U2!,
          time: Date.now(),
          $insert_id: 'mobile-order-1',
          $os: 'iOS',
          amount: 42,
        },
      },
    });
    await sink.close();

    const finding = page.locator('.finding[data-kind="shared_device"]');
    await finding.waitFor(); // arrived over Server-Sent Events, no reload
    await expect(finding.locator('.finding-title').textContent()).resolves.toContain(
      `was used by ${shared.U1} and ${shared.U2}`,
    );
    const refused = (await drawnLinks()).filter((link) => link.outcome === 'refused');
    expect(refused).toEqual([
      {
        from: `$device:${shared.D1}`,
        to: shared.U2!,
        outcome: 'refused',
        label: '✕ Order Placed: device already linked',
      },
    ]);
    await expect(page.locator(`.edge[data-outcome="refused"]`).getAttribute('aria-label')).resolves.toContain(
      `is already linked to ${shared.U1}`,
    );

    // The finding points at the event: following its evidence focuses that row in U2's timeline.
    await finding.locator('.evidence-link').last().click();
    const focused = page.locator('tr:focus');
    await expect(focused.getAttribute('data-event')).resolves.toBe('Order Placed');
    await expect(focused.locator('.props').textContent()).resolves.toContain('iOS');
    expect(await page.locator(`section.person[data-cluster="${shared.U2}"] tr:focus`).count()).toBe(1);
  });

  it('is reachable by keyboard: filters, every ID and link in the graph, the findings and the timelines', async () => {
    // The page runs in the browser; these snippets are strings so this Node test needs no DOM types.
    await page.evaluate(`
      document.activeElement?.blur();
      window.scrollTo(0, 0);
      window.reached = [];
      document.addEventListener('focusin', (event) => {
        const el = event.target;
        window.reached.push(el.getAttribute('data-id') || el.getAttribute('data-link') || el.id ||
          el.tagName.toLowerCase() + '.' + (el.getAttribute('class') || ''));
      });
    `);
    for (let i = 0; i < 80; i += 1) await page.keyboard.press('Tab');
    const reached = (await page.evaluate('window.reached')) as string[];
    for (const field of ['filter-user', 'filter-device', 'filter-event', 'filter-from', 'filter-to']) {
      expect(reached).toContain(field);
    }
    const nodes = await page.$$eval('svg .node', (all) => all.map((n) => n.getAttribute('data-id')));
    const links = await page.$$eval('svg .edge', (all) => all.map((n) => n.getAttribute('data-link')));
    for (const id of [...nodes, ...links]) expect(reached).toContain(id);
    expect(reached).toContain('button.evidence-link');
    expect(reached).toContain('div.table-scroll');

    // Enter on a user's ID narrows the page to that user.
    const shared = idsOf('Multiple Users, One Device');
    await page.locator(`.node[data-id="${shared.U2}"]`).focus();
    await page.keyboard.press('Enter');
    await expect(page.locator('#filter-user').inputValue()).resolves.toBe(shared.U2);
    expect(Object.keys(await drawnClusters())).toEqual([shared.U2]);
    await expect(page.locator(`.node[data-id="${shared.U2}"]`).getAttribute('aria-pressed')).resolves.toBe(
      'true',
    );
    await page.locator('button[type="reset"]').click();
    await expect.poll(() => page.locator('svg .cluster').count()).toBe(3);
  }, 90_000);

  it('reads in light and dark themes (screenshots)', async () => {
    const out = process.env.IDSTITCH_UPDATE_SCREENSHOTS
      ? join(root, 'packages/inspector/docs')
      : join(dir, 'screenshots');
    mkdirSync(out, { recursive: true });
    const backgrounds: string[] = [];
    for (const colorScheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme });
      await page.evaluate('window.scrollTo(0, 0)');
      backgrounds.push((await page.evaluate('getComputedStyle(document.body).backgroundColor')) as string);
      await page.screenshot({ path: join(out, `inspector-${colorScheme}.png`) });
    }
    expect(backgrounds[0]).toBe('rgb(246, 247, 249)');
    expect(backgrounds[1]).toBe('rgb(15, 19, 23)');
    expect(existsSync(join(out, 'inspector-dark.png'))).toBe(true);
  });
});
