import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalSink, type OutgoingMessage } from '@idstitch/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type InspectorSnapshot, inspector, localSinkSource } from '../src/index.js';

const DEVICE = '9b2f3c1e-5d4a-4b6c-8e7f-0a1b2c3d4e5f';
const track = (name: string, userId?: string): OutgoingMessage => ({
  kind: 'event',
  payload: {
    event: name,
    properties: {
      distinct_id: userId ?? `$device:${DEVICE}`,
      $device_id: DEVICE,
      ...(userId === undefined ? {} : { $user_id: userId }),
      time: 1_700_000_000_000,
      $insert_id: name,
    },
  },
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Reads `event: snapshot` messages off a Server-Sent Events response body. */
function snapshots(body: ReadableStream<Uint8Array>) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  return async function next(): Promise<InspectorSnapshot> {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (block.startsWith('event: snapshot') && data) return JSON.parse(data) as InspectorSnapshot;
        continue;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      buffer += value;
    }
  };
}

describe('live updates over Server-Sent Events', () => {
  it("pushes a new snapshot when the app's LocalSink appends, resolved in the sink's mode", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'idstitch-live-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const sink = new LocalSink({ path: join(dir, 'events.ndjson'), mode: 'original' });
    cleanups.push(() => sink.close());
    const handler = inspector({ source: localSinkSource(sink), uiDir: join(dir, 'no-ui') });
    cleanups.push(() => handler.close());
    const server: Server = createServer((request, response) => handler(request, response));
    await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
    cleanups.push(() => new Promise<void>((done) => server.close(() => done())));
    const controller = new AbortController();
    cleanups.push(() => controller.abort());

    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/stream`, {
      signal: controller.signal,
    });
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const next = snapshots(response.body!);
    const first = await next();
    expect(first.problem).toBeNull(); // the sink created the file at start-up; nothing in it yet
    expect(first.totals.events).toBe(0);

    sink.write(track('Viewed'));
    sink.write(track('Signed In', 'U1'));
    await sink.flush();
    let latest = await next();
    while (latest.totals.events < 2) latest = await next();
    expect(latest.revision).toBeGreaterThan(first.revision);
    expect([latest.mode, latest.modeInferred, latest.problem]).toEqual(['original', false, null]);
    // Original ID Merge ignores $device_id/$user_id pairs: no link, two clusters.
    expect(latest.clusters.map((c) => c.id).sort()).toEqual([`$device:${DEVICE}`, 'U1'].sort());
  });
});
