import { describe, expect, it } from 'vitest';
import type { DamagedRecord } from './types.js';
import { UnreadIndex } from './unread-index.js';

describe('UnreadIndex', () => {
  it('gives back each record’s sequence number and endpoint, across runs broken where the sequence skips', () => {
    const index = new UnreadIndex();
    // Records 0-2 spilled with seqs 10-12; 3 went to memory (seq 13, not held); 4-5 spilled with 14-15;
    // then the sequence skips (a message refused by the spool took 16): 6 has 17.
    index.add(0, 10, 'track');
    index.add(1, 11, 'engage');
    index.add(2, 12, 'groups');
    index.add(4, 14, 'import');
    index.add(5, 15, 'track');
    index.add(6, 17, 'track');
    expect(index.count).toBe(6);
    expect(index.has(3)).toBe(false);
    expect(index.delete(1)).toBe(true);
    expect(index.delete(1)).toBe(false);
    const out: DamagedRecord[] = [];
    index.takeBefore(6, out);
    expect(out).toEqual([
      { seq: 10, endpoint: 'track' },
      { seq: 12, endpoint: 'groups' },
      { seq: 14, endpoint: 'import' },
      { seq: 15, endpoint: 'track' },
    ]);
    index.takeBefore(Number.POSITIVE_INFINITY, out);
    expect(out.at(-1)).toEqual({ seq: 17, endpoint: 'track' });
    expect(index.count).toBe(0);
  });

  it('reads in order cost nothing to skip: takeBefore the record just read finds nothing', () => {
    const index = new UnreadIndex();
    for (let i = 0; i < 1000; i += 1) index.add(i, i + 1, 'track');
    const out: DamagedRecord[] = [];
    for (let i = 0; i < 1000; i += 1) {
      index.takeBefore(i, out);
      expect(index.delete(i)).toBe(true);
    }
    expect(out).toEqual([]);
    expect(index.count).toBe(0);
  });

  it('a previous process’s records (sequence number 0) need no runs; a sparse index skips settled ones', () => {
    const index = new UnreadIndex();
    for (let i = 0; i < 100; i += 3) index.add(i, 0, 'engage');
    // 256 records of 3 bits: 96 bytes, and no run arrays.
    expect(index.bytes).toBe(96);
    const out: DamagedRecord[] = [];
    index.takeBefore(10, out);
    expect(out).toEqual([0, 3, 6, 9].map(() => ({ seq: 0, endpoint: 'engage' })));
    expect(index.count).toBe(30);
  });

  it('growth() says exactly what add() allocates', () => {
    const index = new UnreadIndex();
    let seq = 1;
    for (let i = 0; i < 5000; i += 1) {
      // A skip in the sequence every 7 records: new runs, and the run arrays double now and then.
      seq += i % 7 === 0 ? 2 : 1;
      const before = index.bytes;
      const growth = index.growth(i, seq);
      index.add(i, seq, 'track');
      expect(index.bytes - before).toBe(growth);
    }
    // 3 bits a record (8192 indexes after doubling) plus 12 bytes a run.
    expect(index.bytes).toBe(8192 * 0.375 + 12 * 1024);
  });
});
