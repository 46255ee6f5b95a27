/**
 * A read-only view of a spool directory, for tools (the inspector) that look at what a running app has not
 * delivered yet. It never takes the `LOCK`, never writes, and tolerates the owner appending, acknowledging,
 * rotating and deleting segments while it reads. The format is decoded by `format.ts`, the module the spool
 * itself writes with; it is loaded on first use, so apps that never read a spool never load `node:zlib`.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { MixpanelEndpoint } from '../mixpanel/endpoint.js';

/** A record the spool holds and has not settled: Mixpanel has not accepted (or refused) it yet. */
export interface SpoolPendingRecord {
  /** The segment's number (its file is `<number padded to 10 digits>.seg`). */
  segment: number;
  /** The record's index in its segment. */
  index: number;
  endpoint: MixpanelEndpoint;
  /** The message as it will be sent to Mixpanel (JSON). */
  json: string;
  /** The owner wrote that it is sending this record (a profile or group update on its way). */
  sending: boolean;
}

/** Bytes of a spool file that hold no readable record (or ledger entry), skipped by the reader. */
export interface SpoolReadDamage {
  /** `torn_tail`: the file ends inside a record (being written right now, or cut by a crash). */
  kind: 'torn_tail' | 'corrupt' | 'ledger_damaged';
  path: string;
  offset: number;
  bytes: number;
  /** One sentence for people. */
  message: string;
}

/** What {@link readSpoolDirectory} saw. */
export interface SpoolDirectoryView {
  /** Absolute path of the directory. */
  dir: string;
  /** Unsettled records, oldest first. */
  records: SpoolPendingRecord[];
  /** Records found settled in the ledgers (delivered or dropped; the owner deletes them with their segment). */
  settled: number;
  /** Segment files read. */
  segments: number;
  damage: SpoolReadDamage[];
}

const SEGMENT = /^(\d{10})\.seg$/;

/** `readFile`, but a file deleted meanwhile (the owner collected its segment) reads as `undefined`. */
async function readIfThere(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Reads the records a spool directory holds and has not settled, without the lock and without writing.
 * Each segment is read before its ledger, so a record settled while it is read is not shown as pending.
 * A record cut by the end of a file (being written now, or torn by a crash) and checksum failures are
 * skipped and listed in `damage`; segments deleted meanwhile are skipped (their records were settled).
 *
 * @param dir The spool's `dir` option (default of `MixpanelSink`: `.idstitch/spool`).
 * @throws The `readdir` error when the directory cannot be read (`ENOENT`: no spool there yet).
 */
export async function readSpoolDirectory(dir: string): Promise<SpoolDirectoryView> {
  const { parseLedger, parseRecords } = await import('./format.js');
  const root = resolve(dir);
  const numbers = (await readdir(root))
    .map((name) => SEGMENT.exec(name)?.[1])
    .filter((no) => no !== undefined)
    .sort();
  const view: SpoolDirectoryView = { dir: root, records: [], settled: 0, segments: 0, damage: [] };
  for (const name of numbers) {
    const path = join(root, `${name}.seg`);
    const buffer = await readIfThere(path);
    if (buffer === undefined) continue;
    const ledgerPath = join(root, `${name}.ack`);
    const ledger = parseLedger((await readIfThere(ledgerPath)) ?? Buffer.alloc(0));
    view.segments += 1;
    // Not `complete`: a record cut by the end of the file may still be being written.
    const { records, damage, next } = parseRecords(buffer, 0, false);
    for (const hurt of damage) {
      view.damage.push({
        kind: 'corrupt',
        path,
        offset: hurt.offset,
        bytes: hurt.bytes,
        message: `${hurt.bytes} damaged bytes at offset ${hurt.offset} of ${path} (checksum mismatch) were skipped`,
      });
    }
    if (next < buffer.length) {
      view.damage.push({
        kind: 'torn_tail',
        path,
        offset: next,
        bytes: buffer.length - next,
        message:
          `${path} ends in ${buffer.length - next} bytes of an incomplete record (being written now, ` +
          'or cut by a crash); skipped',
      });
    }
    if (ledger.damaged) {
      view.damage.push({
        kind: 'ledger_damaged',
        path: ledgerPath,
        offset: 0,
        bytes: 0,
        message: `${ledgerPath} ends in a damaged or unfinished entry; records it settled may show as pending`,
      });
    }
    const segment = Number(name);
    for (const record of records) {
      if (ledger.acked.has(record.index)) {
        view.settled += 1;
        continue;
      }
      view.records.push({
        segment,
        index: record.index,
        endpoint: record.endpoint,
        json: record.json,
        sending: ledger.sending.has(record.index),
      });
    }
  }
  return view;
}
