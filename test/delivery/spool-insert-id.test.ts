/**
 * A record read back from the spool is matched to Mixpanel's `failed_records` by its `$insert_id`, which the
 * sink reads from the record's JSON. It must be the event's own, `properties.$insert_id`: caller properties
 * come first in the serialised event and may hold an object with an `$insert_id` key of its own (a copied
 * event, a webhook payload). Read by a text search, that nested one named the wrong event: the refusal of one
 * event matched no message, and the whole batch was counted refused although Mixpanel ingested the rest.
 * Real sockets to the fake Mixpanel.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IdstitchError } from '@idstitch/core';
import { MixpanelSink } from '@idstitch/core';
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { encodeRecord } from '../../packages/core/src/sinks/spool/format.js';

let fake: FakeMixpanel;
const dirs: string[] = [];
beforeAll(async () => {
  fake = await startFakeMixpanel({ token: 'ids', apiSecret: 'ids-secret' });
});
afterAll(async () => {
  await fake.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';

/** As the sink serialises an event: caller properties first, then the stamped identity fields. */
function event(name: string, insertId: string, callerProperties: Record<string, unknown>): string {
  return JSON.stringify({
    event: name,
    properties: {
      ...callerProperties,
      distinct_id: 'user-1',
      time: Date.now(),
      $insert_id: insertId,
      token: 'ids',
    },
  });
}

it.each([
  ['beside the JSON (the current format)', true],
  ['in the JSON only (records written before the ID was kept beside it)', false],
])(
  'a refused event read back from the spool is matched by its own $insert_id, not one nested in its properties: %s',
  async (_, beside) => {
    fake.clear();
    const dir = mkdtempSync(join(tmpdir(), 'idstitch-spool-insert-id-'));
    dirs.push(dir);
    // What a previous process left: A carries a copy of B (with B's $insert_id) among its properties.
    const left = Buffer.concat([
      encodeRecord(
        0,
        1,
        'import',
        event('Forwarded', A, { original: { event: 'Bought', $insert_id: B } }),
        beside ? A : undefined,
      ),
      encodeRecord(1, 2, 'import', event('Bought', B, {}), beside ? B : undefined),
    ]);
    writeFileSync(join(dir, '0000000001.seg'), left);
    // Mixpanel refuses A, naming it by $insert_id only (no index), and ingests B. Queued more than once: on a
    // loaded machine the first answer can come after the sink's timeout, and the retry must be refused too.
    const refuseA = {
      kind: 'refuse',
      insertIds: [A],
      key: '$insert_id',
      withIndex: false,
      endpoint: 'import',
    } as const;
    fake.fail(refuseA, refuseA, refuseA);
    const errors: IdstitchError[] = [];
    const refused: (string | undefined)[] = [];
    const sink = new MixpanelSink({
      token: 'ids',
      apiSecret: 'ids-secret',
      host: fake.url,
      flushIntervalMs: 20,
      spool: { dir },
      onError: (error) => errors.push(error),
    });
    sink.on('failedRecord', (record) => refused.push(record.insertId));
    await sink.ready();
    expect(sink.stats().recovered).toBe(2);
    await sink.drain();
    expect([...fake.insertIds()]).toEqual([B]);
    expect(refused).toEqual([A]);
    expect(sink.stats()).toMatchObject({ delivered: 1, dropped: { rejected: 1 }, queued: 0, spooled: 0 });
    expect(errors.map((e) => e.message)).toEqual([expect.stringContaining(`Mixpanel refused event ${A}`)]);
    await sink.close();
  },
);
