import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IdstitchError } from '../errors.js';
import { IdstitchOptionsError } from '../errors.js';
import type { OutgoingMessage } from '../messages/types.js';
import { LocalSink } from './local-sink.js';
import { parseNdjson } from './ndjson.js';

const DEVICE = '9b2f3c1e-5d4a-4b6c-8e7f-0a1b2c3d4e5f';

function track(n: number, userId?: string): OutgoingMessage {
  return {
    kind: 'event',
    payload: {
      event: `Event ${n}`,
      properties: {
        distinct_id: userId ?? `$device:${DEVICE}`,
        time: 1_700_000_000_000 + n,
        $insert_id: `insert-${n}`,
        $device_id: DEVICE,
        ...(userId === undefined ? {} : { $user_id: userId }),
      },
    },
  };
}

function insertIds(path: string): string[] {
  return parseNdjson(readFileSync(path, 'utf8')).messages.map((m) =>
    m.kind === 'event' ? String(m.payload.properties.$insert_id) : m.kind,
  );
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'idstitch-local-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('LocalSink', () => {
  it('creates its folder and appends one JSON line per message, events, profiles and groups alike', async () => {
    const path = join(dir, 'nested', 'deeper', 'events.ndjson');
    const sink = new LocalSink({ path });
    sink.write(track(1));
    sink.write({ kind: 'profile', payload: { $distinct_id: 'user-1', $set: { name: 'Ada' } } });
    sink.write({
      kind: 'group',
      payload: { $group_key: 'company', $group_id: 'acme', $set: { plan: 'pro' } },
    });
    await sink.flush();
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe('');
    expect(lines.slice(0, 3).map((line) => JSON.parse(line).kind)).toEqual(['event', 'profile', 'group']);
    expect(sink.stats).toEqual({ written: 3, pending: 0, dropped: {} });
    await sink.close();
  });

  it('defaults to .idstitch/events.ndjson under the working directory', async () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const sink = new LocalSink();
      expect(sink.path).toBe(join(dir, '.idstitch', 'events.ndjson'));
      expect(sink.mode).toBe('simplified');
      await sink.close();
    } finally {
      process.chdir(cwd);
    }
  });

  it('returns from write before touching the disk, and flush waits until the lines are there', async () => {
    const path = join(dir, 'events.ndjson');
    const sink = new LocalSink({ path });
    sink.write(track(1));
    expect(readFileSync(path, 'utf8')).toBe('');
    expect(sink.stats.pending).toBe(1);
    await sink.flush();
    expect(insertIds(path)).toEqual(['insert-1']);
    await sink.close();
  });

  it('keeps every line whole and each one exactly once under concurrent writers', async () => {
    const path = join(dir, 'events.ndjson');
    const a = new LocalSink({ path });
    // A second instance on the same file, like a hot reload would create, shares the file's append queue.
    const b = new LocalSink({ path });
    const requests = Array.from({ length: 40 }, async (_, r) => {
      for (let i = 0; i < 25; i += 1) {
        (r % 2 === 0 ? a : b).write(track(r * 1000 + i));
        // Interleave with other requests the way awaiting handlers do.
        if (i % 5 === 0) await new Promise((done) => setImmediate(done));
      }
    });
    // Flushes in the middle of the stream must not reorder or duplicate anything.
    const midFlushes = [a.flush(), b.flush()];
    await Promise.all([...requests, ...midFlushes]);
    await Promise.all([a.flush(), b.flush()]);
    const text = readFileSync(path, 'utf8');
    const parsed = parseNdjson(text);
    expect(parsed.unreadable).toEqual([]);
    expect(parsed.messages).toHaveLength(1000);
    expect(new Set(insertIds(path)).size).toBe(1000);
    // Each writer's own messages stay in the order it wrote them.
    const ofRequest = (r: number) =>
      insertIds(path).filter((id) => Math.floor(Number(id.slice('insert-'.length)) / 1000) === r);
    expect(ofRequest(3)).toEqual(Array.from({ length: 25 }, (_, i) => `insert-${3000 + i}`));
    await Promise.all([a.close(), b.close()]);
  });

  it('appends across restarts instead of starting over', async () => {
    const path = join(dir, 'events.ndjson');
    const first = new LocalSink({ path });
    first.write(track(1));
    first.write(track(2));
    await first.close();
    const second = new LocalSink({ path });
    second.write(track(3));
    await second.close();
    expect(insertIds(path)).toEqual(['insert-1', 'insert-2', 'insert-3']);
  });

  it('after a crash mid-write, loses only the truncated line: the next run starts on a fresh line', async () => {
    const path = join(dir, 'events.ndjson');
    const full = `${JSON.stringify(track(1))}\n${JSON.stringify(track(2))}\n`;
    const cut = JSON.stringify(track(3)).slice(0, 40);
    writeFileSync(path, full + cut);

    const restarted = new LocalSink({ path });
    restarted.write(track(4));
    const { messages, unreadable, lineNumbers } = await restarted.read();
    expect(messages.map((m) => (m.kind === 'event' ? m.payload.event : ''))).toEqual([
      'Event 1',
      'Event 2',
      'Event 4',
    ]);
    expect(unreadable).toEqual([expect.objectContaining({ line: 3, excerpt: cut })]);
    expect(lineNumbers).toEqual([1, 2, 4]);
    await restarted.close();
  });

  it('reading a file whose last line is cut off keeps every other line', () => {
    const lines = [1, 2, 3].map((n) => JSON.stringify(track(n)));
    const parsed = parseNdjson(`${lines.join('\n')}\n${lines[0]!.slice(0, 25)}`);
    expect(parsed.messages).toHaveLength(3);
    expect(parsed.unreadable).toEqual([
      expect.objectContaining({ line: 4, reason: expect.stringContaining('truncated') }),
    ]);
  });

  it('throws a start-up error naming the option when the path cannot be written', () => {
    const file = join(dir, 'not-a-folder');
    writeFileSync(file, 'x');
    const attempt = () => new LocalSink({ path: join(file, 'events.ndjson') });
    expect(attempt).toThrow(IdstitchOptionsError);
    expect(attempt).toThrow(
      /option `path` points at .*not-a-folder.*events\.ndjson, which cannot be written/,
    );
    // A folder where the file should be is just as unwritable.
    expect(() => new LocalSink({ path: dir })).toThrow(IdstitchOptionsError);
  });

  // Root ignores file permissions, so this case can only be shown as an ordinary user.
  it.skipIf(process.getuid?.() === 0)('throws at start-up for a read-only folder', () => {
    const readOnly = join(dir, 'ro');
    mkdirSync(readOnly);
    chmodSync(readOnly, 0o500);
    try {
      expect(() => new LocalSink({ path: join(readOnly, 'events.ndjson') })).toThrow(
        /cannot be written \(EACCES\)/,
      );
    } finally {
      chmodSync(readOnly, 0o700);
    }
  });

  it('rejects a mode other than simplified or original at start-up', () => {
    expect(() => new LocalSink({ path: join(dir, 'e.ndjson'), mode: 'legacy' as never })).toThrow(
      /option `mode` must be 'simplified' or 'original'/,
    );
  });

  it('never throws from write: unserialisable messages and writes after close are counted as drops', async () => {
    const errors: IdstitchError[] = [];
    const path = join(dir, 'events.ndjson');
    const sink = new LocalSink({ path, onError: (e) => errors.push(e) });
    const bad = track(1) as { payload: { properties: Record<string, unknown> } } & OutgoingMessage;
    bad.payload.properties.big = 10n;
    expect(() => sink.write(bad)).not.toThrow();
    sink.write(track(2));
    await sink.close();
    expect(() => sink.write(track(3))).not.toThrow();
    expect(insertIds(path)).toEqual(['insert-2']);
    expect(sink.stats.dropped).toEqual({ invalid: 1, after_close: 1 });
    expect(errors.map((e) => e.code)).toEqual(['invalid_message']);
  });

  it('drops beyond maxQueue as queue_overflow instead of growing without bound', async () => {
    const path = join(dir, 'events.ndjson');
    const sink = new LocalSink({ path, maxQueue: 3 });
    for (let i = 0; i < 5; i += 1) sink.write(track(i));
    await sink.flush();
    expect(insertIds(path)).toEqual(['insert-0', 'insert-1', 'insert-2']);
    expect(sink.stats.dropped).toEqual({ queue_overflow: 2 });
    await sink.close();
  });

  it('recreates the folder if it is deleted while the app runs', async () => {
    const path = join(dir, 'logs', 'events.ndjson');
    const sink = new LocalSink({ path });
    rmSync(join(dir, 'logs'), { recursive: true });
    sink.write(track(1));
    await sink.flush();
    expect(insertIds(path)).toEqual(['insert-1']);
    await sink.close();
  });

  it('reports an append that keeps failing and counts its messages as dropped', async () => {
    const errors: IdstitchError[] = [];
    const path = join(dir, 'events.ndjson');
    const sink = new LocalSink({ path, onError: (e) => errors.push(e) });
    // Replace the file with a folder: every append now fails with EISDIR.
    rmSync(path);
    mkdirSync(path);
    sink.write(track(1));
    sink.write(track(2));
    await sink.flush();
    expect(sink.stats.dropped).toEqual({ retries_exhausted: 2 });
    expect(errors).toEqual([expect.objectContaining({ code: 'store_failed' })]);
    expect(errors[0]!.message).toContain('could not append 2 messages');
    await sink.close();
  });

  it('counts recordDrop calls from the producer', async () => {
    const sink = new LocalSink({ path: join(dir, 'events.ndjson') });
    sink.recordDrop('consent', 2);
    sink.recordDrop('consent');
    expect(sink.stats.dropped).toEqual({ consent: 3 });
    await sink.close();
  });
});
