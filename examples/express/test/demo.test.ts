import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { isUuidV4 } from '@idstitch/core';
import {
  expectedGuideRows,
  type GuideTable,
  SIMPLIFIED_GUIDE_TABLES,
  toComparableRow,
} from '@idstitch/inspector/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_USERS, type DemoResult, formatDemo, runDemo, STEP_TABLE_HEADER } from '../src/demo-flows.js';

const run = promisify(execFile);
const repoRoot = resolve(import.meta.dirname, '../../..');
const tables = SIMPLIFIED_GUIDE_TABLES.map((table, i) => ({ n: i + 1, table }));

interface PrintedTable {
  n: number;
  ids: Record<string, string>;
  header: string[];
  rows: string[][];
  verdict: string;
}

const cells = (line: string) =>
  line
    .split('|')
    .slice(1, -1)
    .map((cell) => cell.trim());

/**
 * Reads the guide tables back out of the demo's output, using only the output: each flow's `IDs:` legend and
 * each `Guide table n/8` pipe table.
 */
function parsePrintedTables(output: string): PrintedTable[] {
  const printed: PrintedTable[] = [];
  let ids: Record<string, string> = {};
  const lines = output.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i]!;
    if (line.startsWith('IDs: ')) {
      ids = Object.fromEntries(
        line
          .slice('IDs: '.length)
          .split(' · ')
          .map((pair) => pair.split(' = ') as [string, string]),
      );
    }
    const title = /^Guide table (\d)\/8 · /.exec(line);
    if (title === null) continue;
    let j = i + 1;
    while (!lines[j]!.startsWith('|')) j += 1;
    const header = cells(lines[j]!);
    const rows: string[][] = [];
    for (j += 2; lines[j]!.startsWith('|'); j += 1) rows.push(cells(lines[j]!));
    printed.push({ n: Number(title[1]), ids: { ...ids }, header, rows, verdict: lines[j]! });
    i = j;
  }
  return printed;
}

/**
 * The printed table equals the guide's cell for cell: `#`, `$device_id`, `$user_id` and the
 * "distinct_id (set by Mixpanel)" cell with real IDs for D1/D2/U1/U2, and the guide's own Notes (the demo
 * writes notes with the placeholders, as the guide does). `+` rows are logged-in events after a link.
 */
function expectPrintedTableMatchesGuide(printed: PrintedTable, table: GuideTable): void {
  expect(printed.header).toEqual(STEP_TABLE_HEADER);
  const numbered = printed.rows.filter((row) => row[0] !== '+');
  const expected = expectedGuideRows(table, printed.ids);
  expect(
    numbered.map(([n, , device, user, , distinctId, notes]) => [n, device, user, distinctId, notes]),
  ).toEqual(
    table.rows.map((row, i) => [
      String(row.event),
      expected[i]!.deviceId,
      expected[i]!.userId ?? '',
      expected[i]!.distinctId,
      row.notes,
    ]),
  );
  numbered.forEach(([, event], i) => {
    expect(event!.split(' ')[0]).toBe(table.rows[i]!.userId === null ? 'Page' : 'Identified');
  });
  printed.rows.forEach((row, i) => {
    if (row[0] !== '+') return;
    const [, event, device, user, , distinctId, notes] = row;
    const before = printed.rows[i - 1]!;
    // Right after its link, on the same device and user, resolving to the user.
    expect(before[1]!.startsWith('Identified')).toBe(true);
    expect([device, user]).toEqual([before[2], before[3]]);
    expect(event).toBe('Page Viewed /');
    expect(distinctId).toBe(user);
    expect(notes).toBe('logged in, after the link (not in the guide)');
  });
  expect(printed.verdict).toBe('✓ matches the guide row for row');
}

describe('the demo (pnpm demo)', () => {
  let dir: string;
  let result: DemoResult;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'idstitch-demo-'));
    result = await runDemo({ file: join(dir, 'events.ndjson') });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("plays the guide's eight tables, in its order, with real IDs in place of D1, D2, U1, U2", () => {
    expect(result.steps.map((step) => step.table)).toEqual(SIMPLIFIED_GUIDE_TABLES);
    const [signup, returning, shared] = result.flows;
    expect(result.flows.map((flow) => flow.name)).toEqual([
      'New User Signup',
      'Returning User',
      'Multiple Users, One Device',
    ]);
    expect(signup!.ids).toEqual({ D1: expect.any(String), U1: DEMO_USERS.ada });
    // The returning user is the same U1 with the first flow's D1, on a second device.
    expect(returning!.ids).toEqual({ ...signup!.ids, D2: expect.any(String) });
    expect(shared!.ids).toMatchObject({ U1: DEMO_USERS.ben, U2: DEMO_USERS.cleo });
    const devices = [signup!.ids.D1, returning!.ids.D2, shared!.ids.D1, shared!.ids.D2];
    expect(devices.every((id) => isUuidV4(id!))).toBe(true);
    expect(new Set(devices).size).toBe(4);
  });

  it.each(tables)("table $n ($table.flow: $table.step) matches the guide's row for row", ({ n, table }) => {
    const step = result.steps[n - 1]!;
    const numbered = step.rows.filter((row) => row.guideEvent !== null);
    expect(numbered.map((row) => row.guideEvent)).toEqual(table.rows.map((row) => row.event));
    expect(numbered.map((row) => toComparableRow(row.row))).toEqual(expectedGuideRows(table, step.ids));
    // The guide's row with both IDs is our Identified event; the others are anonymous page views.
    expect(numbered.map((row) => row.row.event)).toEqual(
      table.rows.map((row) => (row.userId === null ? 'Page Viewed' : 'Identified')),
    );
    // The demo's notes are the guide's notes.
    expect(numbered.map((row) => row.notes.join('; '))).toEqual(table.rows.map((row) => row.notes));
    // Each "+" row: the page after logging in, right after its link, attributed to the user, linking nothing.
    step.rows.forEach((row, i) => {
      if (row.guideEvent !== null) return;
      const link = step.rows[i - 1]!.row;
      expect(link.event).toBe('Identified');
      expect(toComparableRow(row.row)).toEqual({
        deviceId: link.deviceId,
        userId: link.userId,
        distinctId: link.userId,
        retroactive: false,
        links: null,
      });
    });
    expect(step.matches).toBe(true);
  });

  it("names its columns as the report's tables do", () => {
    const text = formatDemo(result);
    const report = text.slice(text.indexOf('idstitch identity report · '));
    const reportHeader = report.split('\n').find((line) => line.startsWith('| #'));
    expect(cells(reportHeader!)).toEqual(STEP_TABLE_HEADER);
  });

  it('prints each table as the guide has it', () => {
    const printed = parsePrintedTables(formatDemo(result));
    expect(printed.map((table) => table.n)).toEqual(tables.map(({ n }) => n));
    for (const { n, table } of tables) expectPrintedTableMatchesGuide(printed[n - 1]!, table);
  });

  it('ends with one cluster per user: both devices with U1, and U1 and U2 apart on the shared device', () => {
    const [signup, returning, shared] = result.flows;
    const { report } = result;
    expect(report.source).toBe(result.file);
    expect(report.mode).toBe('simplified');
    expect(report.findings).toEqual([]);
    expect(
      report.timelines.map((timeline) => [timeline.distinctId, timeline.anonymous, [...timeline.ids].sort()]),
    ).toEqual([
      [
        DEMO_USERS.ada,
        false,
        [`$device:${signup!.ids.D1}`, `$device:${returning!.ids.D2}`, DEMO_USERS.ada].sort(),
      ],
      [DEMO_USERS.ben, false, [`$device:${shared!.ids.D1}`, DEMO_USERS.ben].sort()],
      [DEMO_USERS.cleo, false, [`$device:${shared!.ids.D2}`, DEMO_USERS.cleo].sort()],
    ]);
    const text = formatDemo(result);
    expect(text).toContain(`User ${DEMO_USERS.ben} · 2 IDs`);
    expect(text).toContain(`User ${DEMO_USERS.cleo} · 2 IDs`);
    expect(text.trimEnd().endsWith("All 8 tables match Mixpanel's guide row for row.")).toBe(true);
  });
});

describe('`pnpm demo` as a command', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'idstitch-demo-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 0, prints the guide tables, and prints the same report as `pnpm idstitch report <file>`', async () => {
    const file = join(dir, 'events.ndjson');
    const demo = await run('pnpm', ['--silent', 'demo', '--out', file], {
      cwd: repoRoot,
      timeout: 60_000,
    });
    expect(demo.stderr).toBe('');
    expect(demo.stdout).toContain(`events: LocalSink → ${file}`);
    const printed = parsePrintedTables(demo.stdout);
    expect(printed.map((table) => table.n)).toEqual(tables.map(({ n }) => n));
    for (const { n, table } of tables) expectPrintedTableMatchesGuide(printed[n - 1]!, table);
    expect(demo.stdout.trimEnd().endsWith("All 8 tables match Mixpanel's guide row for row.")).toBe(true);

    const cli = await run('pnpm', ['--silent', 'idstitch', 'report', file], {
      cwd: repoRoot,
      timeout: 60_000,
    });
    const start = demo.stdout.indexOf('idstitch identity report · ');
    const end = demo.stdout.lastIndexOf('\nAll 8 tables');
    expect(start).toBeGreaterThan(0);
    expect(demo.stdout.slice(start, end)).toBe(cli.stdout);

    // A second run must not append to the first one's file.
    const again = await run('pnpm', ['--silent', 'demo', '--out', file], { cwd: repoRoot }).catch((e) => e);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('already exists; the demo needs a fresh file');
  }, 60_000);

  it('without --out, each run replaces .idstitch/demo.ndjson: repeated runs leave one file', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'idstitch-demo-default-'));
    try {
      // As `pnpm demo` runs it: in examples/express, with the folder pnpm was started in as INIT_CWD.
      const options = { cwd: join(repoRoot, 'examples/express'), env: { ...process.env, INIT_CWD: cwd } };
      const args = ['--import', 'tsx', '--conditions=@idstitch/source', 'src/demo.ts'];
      const first = await run(process.execPath, args, { ...options, timeout: 60_000 });
      const lines = readFileSync(join(cwd, '.idstitch/demo.ndjson'), 'utf8').split('\n').length;
      const second = await run(process.execPath, args, { ...options, timeout: 60_000 });
      expect(second.stdout).toContain(`events: LocalSink → ${join(cwd, '.idstitch/demo.ndjson')}`);
      expect(readdirSync(join(cwd, '.idstitch'))).toEqual(['demo.ndjson']);
      expect(readFileSync(join(cwd, '.idstitch/demo.ndjson'), 'utf8').split('\n').length).toBe(lines);
      expect(first.stdout.trimEnd().endsWith("All 8 tables match Mixpanel's guide row for row.")).toBe(true);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 120_000);
});
