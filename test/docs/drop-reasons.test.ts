import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DROP_REASONS } from '@idstitch/core';
import { expect, it } from 'vitest';

/**
 * docs/delivery.md lists the reasons `sink.stats().dropped` counts: a reason the code gained and the list did not
 * (it happened to `bot` and `in_doubt`) is a drop a reader cannot look up.
 */
it('docs/delivery.md names every drop reason MixpanelSink counts, and no other', () => {
  const docs = readFileSync(resolve(import.meta.dirname, '../../docs/delivery.md'), 'utf8');
  const start = docs.indexOf('`dropped` by reason (');
  expect(start, 'the stats paragraph of docs/delivery.md').toBeGreaterThan(-1);
  const list = docs.slice(start, docs.indexOf('),', start));
  const named = [...list.matchAll(/`([a-z_]+)`/g)]
    .map((match) => match[1])
    .filter((name) => name !== 'dropped');
  expect(new Set(named)).toEqual(new Set(DROP_REASONS));
});
