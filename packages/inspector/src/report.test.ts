import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutgoingMessage } from '@idstitch/core';
import { LocalSink, parseNdjson } from '@idstitch/core';
import { describe, expect, it } from 'vitest';
import { guideTableMessages, SIMPLIFIED_GUIDE_TABLES } from './guide-tables.js';
import { buildReport, formatReportJson, formatReportText, reportFromSink } from './report.js';

const D1 = '9b2f3c1e-5d4a-4b6c-8e7f-0a1b2c3d4e5f';
const D2 = 'c4d5e6f7-0a1b-4c2d-9e3f-4a5b6c7d8e9f';
const IDS = { D1, D2, U1: 'user-1001', U2: 'user-1002' };
const multipleUsers = SIMPLIFIED_GUIDE_TABLES.at(-1)!;

describe('buildReport', () => {
  it('gives one timeline per user, in order of first event, with the guide’s columns', () => {
    const report = buildReport(guideTableMessages(multipleUsers, IDS), { mode: 'simplified' });
    expect(report.timelines.map((t) => [t.distinctId, t.anonymous, t.rows.length])).toEqual([
      ['user-1001', false, 2],
      ['user-1002', false, 3],
    ]);
    expect(report.timelines[1]!.rows[0]).toEqual({
      n: 1,
      message: 2,
      line: null,
      event: '3',
      deviceId: D2,
      userId: null,
      distinctIdSent: `$device:${D2}`,
      distinctId: `$device:${D2}`,
      resolved: 'user-1002',
      changed: true,
      retroactive: true,
      notes: ['retroactively updated'],
    });
    expect(report.totals).toEqual({
      messages: 5,
      events: 5,
      profileUpdates: 0,
      groupUpdates: 0,
      clusters: 2,
      identifiedUsers: 2,
      findings: 0,
      unreadableLines: 0,
    });
  });

  it('shows visitors nobody identified as anonymous timelines', () => {
    const report = buildReport(guideTableMessages(SIMPLIFIED_GUIDE_TABLES[0]!, IDS), { mode: 'simplified' });
    expect(report.timelines).toEqual([
      expect.objectContaining({ distinctId: `$device:${D1}`, anonymous: true, ids: [`$device:${D1}`] }),
    ]);
  });

  it('quotes the messages behind each finding, by file line when it has them', () => {
    const lines = [
      {
        kind: 'event',
        payload: {
          event: 'Identified',
          properties: { distinct_id: 'u1', $device_id: D1, $user_id: 'u1', time: 1, $insert_id: 'a' },
        },
      },
      {
        kind: 'event',
        payload: {
          event: 'Identified',
          properties: { distinct_id: 'u2', $device_id: D1, $user_id: 'u2', time: 2, $insert_id: 'b' },
        },
      },
    ].map((m) => JSON.stringify(m));
    const parsed = parseNdjson(`${lines[0]}\nnot json\n${lines[1]}\n`);
    const report = buildReport(parsed.messages, { ...parsed, source: 'events.ndjson' });
    const shared = report.findings.find((f) => f.kind === 'shared_device')!;
    expect(shared.evidence).toEqual([
      { message: 0, line: 1, description: `event "Identified" distinct_id=u1 $device_id=${D1} $user_id=u1` },
      { message: 1, line: 3, description: `event "Identified" distinct_id=u2 $device_id=${D1} $user_id=u2` },
    ]);
    expect(report.unreadable).toEqual([expect.objectContaining({ line: 2 })]);
  });

  it('guesses the mode when not told, and says so', () => {
    const messages: OutgoingMessage[] = [
      {
        kind: 'event',
        payload: {
          event: '$identify',
          properties: { distinct_id: 'u1', $anon_id: D1, $identified_id: 'u1', time: 1, $insert_id: 'a' },
        },
      },
    ];
    const report = buildReport(messages);
    expect([report.mode, report.modeInferred]).toEqual(['original', true]);
    expect(formatReportText(report)).toContain(
      'ID Merge API: original (guessed from the events; pass --mode simplified',
    );
  });
});

describe('formatReportText', () => {
  const report = buildReport(guideTableMessages(multipleUsers, IDS), {
    mode: 'simplified',
    source: 'events.ndjson',
  });
  const text = formatReportText(report);

  it('prints each user’s events as a pipe table in the guide’s layout', () => {
    const lines = text.split('\n');
    const start = lines.indexOf('User user-1002 · 2 IDs · 3 events');
    expect(start).toBeGreaterThan(0);
    const table = lines.slice(start + 1, start + 6);
    expect(
      table.map((l) =>
        l
          .split('|')
          .map((c) => c.trim())
          .slice(1, -1),
      ),
    ).toEqual([
      ['#', 'Event', '$device_id', '$user_id', 'distinct_id (sent)', 'resolved distinct_id', 'Notes'],
      expect.any(Array),
      ['1', '3', D2, '', `$device:${D2}`, `$device:${D2} ⇒ user-1002`, 'retroactively updated'],
      ['2', '4', D2, '', `$device:${D2}`, `$device:${D2} ⇒ user-1002`, 'retroactively updated'],
      ['3', '5', D2, 'user-1002', 'user-1002', 'user-1002', `links ${D2} ⇒ user-1002`],
    ]);
    // Padded so the columns line up for a side-by-side read against the guide.
    expect(new Set(table.map((l) => l.length)).size).toBe(1);
  });

  it('ends with the clusters and the QA verdict', () => {
    expect(text).toContain('idstitch identity report · events.ndjson');
    expect(text).toContain('ID Merge API: simplified\n');
    expect(text).toContain(`  user-1001 · 2 IDs: $device:${D1}, user-1001 · 2 events`);
    expect(text).toContain(`  user-1002 · 2 IDs: $device:${D2}, user-1002 · 3 events`);
    expect(text.trimEnd().endsWith('QA findings: none')).toBe(true);
  });

  it('spells out findings with severity, advice and evidence', () => {
    const messages: OutgoingMessage[] = [
      {
        kind: 'event',
        payload: {
          event: 'Viewed',
          properties: { distinct_id: `$device:${D1}`, $device_id: D1, time: 1, $insert_id: 'a' },
        },
      },
      { kind: 'profile', payload: { $distinct_id: `$device:${D1}`, $set: { plan: 'free' } } },
    ];
    const out = formatReportText(buildReport(messages, { mode: 'simplified' }));
    expect(out).toContain(
      `QA findings (1)\n  WARNING anonymous_profile: Profile created for anonymous ID $device:${D1}`,
    );
    expect(out).toContain(`· message #2: profile $set on $device:${D1} {"plan":"free"}`);
    expect(out).toContain(`    profile $device:${D1} (anonymous): {"plan":"free"}`);
  });
});

describe('formatReportJson', () => {
  it('round-trips the whole report', () => {
    const report = buildReport(guideTableMessages(multipleUsers, IDS), { mode: 'simplified' });
    expect(JSON.parse(formatReportJson(report))).toEqual(report);
  });
});

describe('reportFromSink', () => {
  const DEVICE = '9b2f3c1e-5d4a-4b6c-8e7f-0a1b2c3d4e5f';
  const track = (n: number, userId?: string): OutgoingMessage => ({
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
  });

  it("flushes the sink and reports its whole file with the sink's own mode, earlier runs included", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'idstitch-report-'));
    try {
      const path = join(dir, 'events.ndjson');
      appendFileSync(path, `${JSON.stringify(track(1))}\n`);
      const sink = new LocalSink({ path, mode: 'simplified' });
      sink.write(track(2, 'user-7'));
      const report = await reportFromSink(sink);
      expect([report.mode, report.modeInferred, report.source]).toEqual(['simplified', false, sink.path]);
      expect(report.timelines).toHaveLength(1);
      expect(report.timelines[0]!.rows.map((r) => [r.line, r.resolved, r.retroactive])).toEqual([
        [1, 'user-7', true],
        [2, 'user-7', false],
      ]);
      await sink.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
