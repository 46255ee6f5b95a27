/**
 * Who may write the spool directory. Whatever a segment in it holds is sent to Mixpanel with the app's
 * credentials: a directory another local user can write (mode 777, a Kubernetes `emptyDir` root, a tmpfs
 * mounted without `mode=`) lets them plant a `$merge` that Mixpanel applies for good. Such a directory is
 * refused (`spool_unavailable`, naming the directory and `chmod 700`) and the sink runs from memory.
 * Real sockets to the fake Mixpanel.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IdstitchError } from '@idstitch/core';
import { MixpanelSink } from '@idstitch/core';
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage } from '@idstitch/fake-mixpanel/helpers';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { encodeRecord } from '../../packages/core/src/sinks/spool/format.js';

let fake: FakeMixpanel;
const dirs: string[] = [];
beforeAll(async () => {
  fake = await startFakeMixpanel({ token: 'perm', apiSecret: 'perm-secret' });
});
afterAll(async () => {
  await fake.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function spoolDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'idstitch-spool-perm-'));
  dirs.push(dir);
  return dir;
}

/** What another local user writes into a spool directory they can write: a `$merge` of their choosing. */
function plantMerge(dir: string): void {
  const merge = JSON.stringify({
    event: '$merge',
    properties: {
      $distinct_ids: ['victim', 'attacker'],
      distinct_id: 'victim',
      time: Date.now(),
      $insert_id: 'planted-merge-0001',
      token: 'perm',
    },
  });
  writeFileSync(join(dir, '0000000001.seg'), encodeRecord(0, 1, 'import', merge));
}

function createSink(dir: string) {
  const errors: IdstitchError[] = [];
  const sink = new MixpanelSink({
    token: 'perm',
    apiSecret: 'perm-secret',
    host: fake.url,
    flushIntervalMs: 20,
    spool: { dir },
    onError: (error) => errors.push(error),
  });
  return { sink, errors };
}

const merges = () => fake.events.filter((event) => event.event === '$merge');

it('a world-writable spool directory is refused: a planted $merge never reaches Mixpanel, the sink runs from memory', async () => {
  fake.clear();
  const dir = spoolDir();
  chmodSync(dir, 0o777);
  plantMerge(dir);
  const { sink, errors } = createSink(dir);
  await sink.ready();
  sink.write(eventMessage('From Memory'));
  await sink.drain();
  expect(merges()).toEqual([]);
  expect(errors.map((e) => e.code)).toEqual(['spool_unavailable']);
  expect(errors[0]?.message).toContain(
    `spool directory ${dir} is writable by its group or by others (mode 777)`,
  );
  expect(errors[0]?.message).toContain(`chmod 700 ${dir}`);
  expect(sink.stats()).toMatchObject({ tracked: 1, delivered: 1, recovered: 0, spooled: 0 });
  await sink.close();
});

it('a spool directory owned by another user is refused', async (context) => {
  if (process.geteuid?.() !== 0) return context.skip('needs root to give the directory to another user');
  fake.clear();
  const dir = spoolDir();
  plantMerge(dir);
  chownSync(dir, 4242, 4242);
  const { sink, errors } = createSink(dir);
  await sink.ready();
  await sink.drain();
  expect(merges()).toEqual([]);
  expect(errors.map((e) => e.code)).toEqual(['spool_unavailable']);
  expect(errors[0]?.message).toContain(`spool directory ${dir} is owned by uid 4242`);
  await sink.close();
});

it('a directory only this user can write is used; one the sink creates gets mode 700, its files 600', async () => {
  fake.clear();
  const dir = join(spoolDir(), 'created');
  await fake.goDown();
  const { sink, errors } = createSink(dir);
  await sink.ready();
  sink.write(eventMessage('Kept'));
  await sink.close(100);
  expect(errors.filter((e) => e.code.startsWith('spool_'))).toEqual([]);
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  expect(statSync(join(dir, '0000000001.seg')).mode & 0o777).toBe(0o600);
  await fake.comeBack();
});

it('a segment file another user made is not read, though the directory passed its check (swapped later)', async (context) => {
  if (process.geteuid?.() !== 0) return context.skip('needs root to give the file to another user');
  fake.clear();
  // Whoever can write the directory's parent can rename it after the start-up check and put theirs in its
  // place, with their segments: each file is checked once opened, by its owner.
  const parent = spoolDir();
  chmodSync(parent, 0o777);
  const dir = join(parent, 'spool');
  mkdirSync(dir, { mode: 0o700 });
  plantMerge(dir);
  chownSync(join(dir, '0000000001.seg'), 4242, 4242);
  const { sink, errors } = createSink(dir);
  await sink.ready();
  sink.write(eventMessage('From Memory'));
  await sink.drain();
  expect(merges()).toEqual([]);
  expect(errors.map((e) => e.code)).toEqual(['spool_unavailable']);
  expect(errors[0]?.message).toContain('0000000001.seg is owned by uid 4242');
  await sink.close();
});
