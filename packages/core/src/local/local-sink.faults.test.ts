// LocalSink under faults: two processes on one file, a full disk, a disk that keeps failing, and a
// read-only working directory.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IdstitchError } from '../errors.js';
import type { OutgoingMessage } from '../messages/types.js';
import { LocalSink } from './local-sink.js';
import { parseNdjson } from './ndjson.js';

function track(n: number, padding = 0): OutgoingMessage {
  return {
    kind: 'event',
    payload: {
      event: `Event ${n}`,
      properties: {
        distinct_id: 'u',
        time: 1_700_000_000_000,
        $insert_id: `insert-${n}`,
        pad: 'x'.repeat(padding),
      },
    },
  };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'idstitch-local-faults-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const sinkSource = pathToFileURL(resolve(import.meta.dirname, 'local-sink.ts')).href;
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

function writer(path: string, name: string, count: number): Promise<number | null> {
  const script = `
    import { LocalSink } from ${JSON.stringify(sinkSource)};
    const sink = new LocalSink({ path: ${JSON.stringify(path)}, maxQueue: 100000, onError: (e) => { console.error(e.message); process.exitCode = 3; } });
    for (let i = 0; i < ${count}; i += 1) {
      sink.write({ kind: 'event', payload: { event: ${JSON.stringify(name)}, properties: { distinct_id: 'u', time: 1, $insert_id: ${JSON.stringify(name)} + '-' + i, pad: 'y'.repeat(200 + (i % 7) * 300) } } });
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    await sink.close(60000);
  `;
  const child = spawn(process.execPath, ['--import', tsx, '--input-type=module', '-e', script], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return new Promise((done) => child.once('exit', (code) => done(code)));
}

describe('LocalSink faults', () => {
  it('two processes appending 40 000 lines to one file: every line whole and parseable', async () => {
    const path = join(dir, 'events.ndjson');
    const codes = await Promise.all([writer(path, 'a', 20_000), writer(path, 'b', 20_000)]);
    expect(codes).toEqual([0, 0]);
    const { messages, unreadable } = parseNdjson(readFileSync(path, 'utf8'));
    expect(unreadable).toEqual([]);
    expect(messages).toHaveLength(40_000);
    expect(
      new Set(
        messages.map((m) => (m.payload as { properties: { $insert_id: string } }).properties.$insert_id),
      ).size,
    ).toBe(40_000);
  }, 120_000);

  it('a write cut short by a full disk: the next line starts on a new line, and only the torn line is lost', async () => {
    const path = join(dir, 'events.ndjson');
    let failNext = false;
    const errors: IdstitchError[] = [];
    const sink = new LocalSink({
      path,
      onError: (e) => errors.push(e),
      writeChunk: async (handle: FileHandle, chunk: Buffer) => {
        if (!failNext) return (await handle.write(chunk)).bytesWritten;
        failNext = false;
        // The disk fills half-way through the chunk: a partial write, then ENOSPC.
        const { bytesWritten } = await handle.write(chunk, 0, Math.floor(chunk.length / 2));
        return bytesWritten;
      },
    });
    sink.write(track(1));
    await sink.flush();
    failNext = true;
    sink.write(track(2, 100));
    await sink.flush();
    sink.write(track(3));
    await sink.flush();
    const { messages, unreadable } = parseNdjson(readFileSync(path, 'utf8'));
    // Line 2 was retried whole after the torn copy; the torn copy is one unreadable line of its own.
    expect(messages.map((m) => (m.payload as { event: string }).event)).toEqual([
      'Event 1',
      'Event 2',
      'Event 3',
    ]);
    expect(unreadable).toHaveLength(1);
    await sink.close();
  });

  it('a disk that keeps failing is reported once, then summarised, then on recovery: not once per append', async () => {
    const path = join(dir, 'events.ndjson');
    let failing = true;
    const errors: IdstitchError[] = [];
    const sink = new LocalSink({
      path,
      onError: (e) => errors.push(e),
      writeChunk: async (handle: FileHandle, chunk: Buffer) => {
        if (failing) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        return (await handle.write(chunk)).bytesWritten;
      },
    });
    for (let i = 0; i < 73; i += 1) {
      sink.write(track(i));
      await sink.flush();
    }
    expect(errors.map((e) => e.details.state)).toEqual(['started']);
    failing = false;
    sink.write(track(100));
    await sink.flush();
    expect(errors.map((e) => e.details.state)).toEqual(['started', 'recovered']);
    expect(errors[1]?.details).toMatchObject({ appends: 73, messages: 73 });
    expect(sink.stats.dropped).toEqual({ retries_exhausted: 73 });
    await sink.close();
  });

  it('with no path given, an unwritable working directory does not throw: it records to the temp folder and says so', async () => {
    const cwd = process.cwd();
    // A file named .idstitch: the default folder cannot be created (as in a read-only directory).
    writeFileSync(join(dir, '.idstitch'), 'not a folder');
    process.chdir(dir);
    try {
      const errors: IdstitchError[] = [];
      const sink = new LocalSink({ onError: (e) => errors.push(e) });
      expect(sink.path.startsWith(tmpdir())).toBe(true);
      sink.write(track(1));
      await sink.flush();
      expect(errors[0]?.message).toContain('cannot write its default file');
      expect(errors[0]?.message).toContain(sink.path);
      expect(sink.stats.written).toBe(1);
      await sink.close();
    } finally {
      process.chdir(cwd);
    }
  });

  let mounted: string | undefined;
  try {
    mounted = join(tmpdir(), `idstitch-tmpfs-${process.pid}`);
    mkdirSync(mounted, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mounted], { stdio: 'ignore' });
  } catch {
    // Mounting needs root (CAP_SYS_ADMIN); the injected-failure tests above cover the same logic.
    mounted = undefined;
  }
  it.skipIf(mounted === undefined)(
    'on a real 64 KB tmpfs that fills up: lines after space returns are whole',
    async () => {
      const path = join(mounted as string, 'events.ndjson');
      const errors: IdstitchError[] = [];
      const sink = new LocalSink({ path, onError: (e) => errors.push(e) });
      try {
        for (let i = 0; i < 200; i += 1) sink.write(track(i, 700));
        await sink.flush();
        expect(errors[0]?.details.state).toBe('started');
        // Space returns.
        const filler = readFileSync(path, 'utf8');
        writeFileSync(path, filler.slice(0, 8000));
        sink.write(track(1000));
        await sink.flush();
        const { messages } = parseNdjson(readFileSync(path, 'utf8'));
        expect(messages.at(-1)?.payload).toMatchObject({ event: 'Event 1000' });
        expect(errors.at(-1)?.details.state).toBe('recovered');
      } finally {
        await sink.close();
        execFileSync('umount', [mounted as string]);
        rmSync(mounted as string, { recursive: true, force: true });
      }
    },
  );
});
