/**
 * `idstitch inspect --spool DIR` serves, over HTTP, what a spool holds and has not delivered; with a LocalSink
 * file as well, an event held in both is shown once.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InspectorSnapshot } from '@idstitch/inspector';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../packages/inspector/src/cli/main.js';
import { openSpool, spooledEvent } from './spool-helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'idstitch-inspect-cli-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs `idstitch inspect …` until the test ends; returns the page's address and what it printed. */
async function inspect(cwd: string, ...argv: string[]): Promise<{ url: string; stdout: () => string }> {
  const controller = new AbortController();
  let stdout = '';
  let announced: (url: string) => void = () => {};
  const listening = new Promise<string>((done) => {
    announced = done;
  });
  const exited = main(['inspect', ...argv, '--port', '0'], {
    cwd,
    stop: controller.signal,
    stdout: (text) => {
      stdout += text;
      const url = /http:\/\/\S+/.exec(stdout)?.[0];
      if (url) announced(url);
    },
    stderr: (text) => announced(`stderr: ${text}`),
  });
  cleanups.push(async () => {
    controller.abort();
    expect(await exited).toBe(0);
  });
  const url = await listening;
  expect(url).toMatch(/^http:\/\//);
  return { url, stdout: () => stdout };
}

const snapshotAt = async (url: string) =>
  (await (await fetch(`${url}api/snapshot`)).json()) as InspectorSnapshot;

describe('idstitch inspect --spool', () => {
  it('serves a snapshot of the events a live spool holds, marked pending', async () => {
    const dir = tempDir();
    const spool = await openSpool(join(dir, 'spool'), cleanups);
    const ids = [0, 1, 2].map(
      (i) =>
        spool.append(
          i + 1,
          'import',
          spooledEvent(i === 1 ? 'Signed In' : 'Viewed', i, i >= 1 ? 'U1' : undefined),
          true,
        ) as number,
    );
    await spool.markSending([ids[2] as number]);

    const { url, stdout } = await inspect(dir, '--spool', 'spool');
    expect(stdout()).toContain(`reading spool ${join(dir, 'spool')}`);
    const snapshot = await snapshotAt(url);
    expect(snapshot.problem).toBeNull();
    expect(snapshot.source).toBe(`spool ${join(dir, 'spool')}`);
    expect(snapshot.totals).toMatchObject({ events: 3, pending: 3, identifiedUsers: 1 });
    // The timeline's properties leave the identity fields out, so the events are told apart by name and time.
    const entries = snapshot.people.flatMap((person) => person.entries);
    expect(entries.map((entry) => [entry.event, entry.time])).toEqual([
      ['Viewed', 1_700_000_000_000],
      ['Signed In', 1_700_000_001_000],
      ['Viewed', 1_700_000_002_000],
    ]);
    expect(
      entries.every((entry) => entry.pending?.startsWith(`spool ${join(dir, 'spool')}, segment 1 #`)),
    ).toBe(true);
    expect(snapshot.notices[0]).toMatch(/only what is not delivered yet/);
    // The device and the user it signed in as form one cluster, linked by the Signed In event.
    expect(snapshot.links.map((link) => [link.event, link.outcome])).toEqual([['Signed In', 'merged']]);
  });

  it('merges a LocalSink file and a spool by $insert_id: an event in both is shown once, pending', async () => {
    const dir = tempDir();
    const spool = await openSpool(join(dir, 'spool'), cleanups);
    const ids = [1, 2].map((i) => spool.append(i, 'import', spooledEvent('Viewed', i), true) as number);
    await spool.markSending([ids[1] as number]);
    const recorded = [0, 1].map((i) =>
      JSON.stringify({ kind: 'event', payload: JSON.parse(spooledEvent('Viewed', i)) }),
    );
    writeFileSync(join(dir, 'events.ndjson'), `${recorded.join('\n')}\n`);

    const { url } = await inspect(dir, 'events.ndjson', '--spool', 'spool');
    const snapshot = await snapshotAt(url);
    expect(snapshot.source).toBe(`${join(dir, 'events.ndjson')} + spool ${join(dir, 'spool')}`);
    const entries = snapshot.people.flatMap((person) => person.entries);
    expect(entries.map((entry) => [entry.time, entry.pending !== null, entry.sources.length])).toEqual([
      [1_700_000_000_000, false, 1],
      [1_700_000_001_000, true, 2],
      [1_700_000_002_000, true, 1],
    ]);
    expect(snapshot.totals).toMatchObject({ events: 3, pending: 2 });
  });

  it.each([
    [
      ['inspect', '--stream', 'shop:outbox'],
      '--stream names the outbox stream of --redis: pass --redis <url> too',
    ],
    [['inspect', '--redis', 'localhost:6379'], '--redis must be a redis:// or rediss:// URL'],
    [['inspect', '--spool'], '--spool needs a value'],
  ])('refuses %j, naming the option and the fix', async (argv, message) => {
    let stderr = '';
    const code = await main(argv, { cwd: tmpdir(), stdout: () => {}, stderr: (text) => (stderr += text) });
    expect([code, stderr]).toEqual([2, expect.stringContaining(message)]);
  });
});
