import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  type CallgrindDump,
  CallgrindFormatError,
  parseCallgrindDump,
  readCallgrindDumps,
  threadPhases,
} from '../src/instructions/callgrind.js';

const fixtures = fileURLToPath(new URL('./fixtures/callgrind/', import.meta.url));

/** A dump file as callgrind 3.19 writes one, with the header lines a test needs changed. */
function dumpFile(lines: { events?: string; summary?: string; totals?: string; part?: string }): string {
  return [
    '# callgrind format',
    'version: 1',
    'creator: callgrind-3.19.0',
    'pid: 7',
    'cmd:  /usr/bin/node target.js',
    `part: ${lines.part ?? '3'}`,
    'thread: 1',
    '',
    'desc: Trigger: --dump-before=getpriority',
    '',
    'positions: line',
    `events: ${lines.events ?? 'Ir'}`,
    ...(lines.summary === undefined ? [] : [`summary: ${lines.summary}`]),
    '',
    'ob=(1) /usr/bin/node',
    'fn=(1) main',
    '0 10',
    '',
    ...(lines.totals === undefined ? [] : [`totals: ${lines.totals}`]),
  ].join('\n');
}

describe('parseCallgrindDump', () => {
  it('reads part, thread, trigger and the count of a real per-dump file', () => {
    const text = readFileSync(join(fixtures, 'callgrind.out.4-07'), 'utf8');
    expect(parseCallgrindDump(text)).toEqual({
      part: 4,
      thread: 7,
      trigger: '--dump-before=statfs',
      ir: 2100,
    });
  });

  it('takes Ir from its column when several events were collected', () => {
    const text = dumpFile({ events: 'Dr Ir Dw', summary: '5 1234 6', totals: '5 1234 6' });
    expect(parseCallgrindDump(text).ir).toBe(1234);
  });

  it('falls back to summary: when there is no totals: line, and to totals: without summary:', () => {
    expect(parseCallgrindDump(dumpFile({ summary: '77' })).ir).toBe(77);
    expect(parseCallgrindDump(dumpFile({ totals: '88' })).ir).toBe(88);
  });

  it('refuses a file whose summary and totals disagree, or that counts no Ir', () => {
    expect(() => parseCallgrindDump(dumpFile({ summary: '1', totals: '2' }))).toThrow(/disagree/);
    expect(() => parseCallgrindDump(dumpFile({ events: 'Dr', summary: '1' }))).toThrow(/no Ir/);
    expect(() => parseCallgrindDump(dumpFile({}))).toThrow(CallgrindFormatError);
    expect(() => parseCallgrindDump('hello\nworld\n')).toThrow(/not a callgrind/);
  });
});

describe('readCallgrindDumps and threadPhases', () => {
  it('pairs the main thread with the thread statfs cut, and ignores the files written at exit', () => {
    const dumps = readCallgrindDumps(fixtures);
    // callgrind.out-01, -03 (a V8 compiler thread) and -07 have no dump number: not read.
    expect(dumps.map((dump) => `${dump.part}-${dump.thread}`)).toEqual([
      '1-1',
      '2-7',
      '3-1',
      '4-7',
      '5-1',
      '6-7',
    ]);
    const phases = threadPhases(dumps);
    expect(phases.main).toBe(1);
    expect(phases.pool).toBe(7);
    expect(phases.mainPhases).toEqual([5_000_000, 150_000, 250_000]);
    expect(phases.poolPhases).toEqual([30_000, 2_100, 4_100]);
    expect(phases.phases).toEqual([5_030_000, 152_100, 254_100]);
  });

  const dump = (part: number, thread: number, trigger: string, ir: number): CallgrindDump => ({
    part,
    thread,
    trigger: `--dump-before=${trigger}`,
    ir,
  });

  it('refuses two pool threads, a pool thread that was never cut, and phases that do not pair up', () => {
    expect(() =>
      threadPhases([dump(1, 1, 'getpriority', 5), dump(2, 7, 'statfs', 1), dump(3, 8, 'statfs', 1)]),
    ).toThrow(/UV_THREADPOOL_SIZE=1/);
    expect(() => threadPhases([dump(1, 1, 'getpriority', 5)])).toThrow(/no dump was triggered by statfs/);
    expect(() =>
      threadPhases([dump(1, 1, 'getpriority', 5), dump(2, 7, 'statfs', 1), dump(3, 1, 'getpriority', 5)]),
    ).toThrow(/do not pair up/);
    expect(() => threadPhases([dump(1, 1, 'getpriority', 5), dump(2, 1, 'statfs', 1)])).toThrow(
      /main thread ran statfs/,
    );
  });

  it('does not count a getpriority dump of another thread as the main thread', () => {
    const phases = threadPhases([
      dump(1, 1, 'getpriority', 10),
      dump(2, 4, 'getpriority', 1_000),
      dump(3, 7, 'statfs', 1),
    ]);
    expect(phases.phases).toEqual([11]);
  });
});
