/**
 * The demo behind `pnpm demo`: the three example flows of Mixpanel's "Identifying Users (Simplified)" guide,
 * played by browsers (one cookie jar each) against the example shop over real HTTP, recorded by a LocalSink,
 * and shown as the guide's eight tables plus the full `idstitch report`.
 *
 * How our events map to the guide's rows. The guide numbers its events 1, 2, 3…; its row with both
 * `$device_id` and `$user_id` is the event that links the device to the user. In idstitch that event is the
 * ordinary `Identified` event the login request sends (Simplified mode), so:
 *   - every anonymous event (a page view before login) is one guide row;
 *   - every `Identified` event is the guide row with both IDs ("Links D1 ⇒ U1");
 *   - any other event carrying a `$user_id` (here the home page the browser lands on after logging in) is
 *     shown with `+` instead of a number. The guide says such events follow ("all events sent after this point
 *     are tracked with both…") but its tables stop at the link. They resolve to the user and link nothing.
 * The split goes by event name, not by how the events resolved, so a resolver bug cannot hide a row.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { LocalSink } from '@idstitch/core';
import {
  buildReport,
  formatReportText,
  type IdentityReport,
  reportFromFile,
  resolvedCell,
  type TimelineRow,
} from '@idstitch/inspector';
import {
  type ComparableRow,
  expectedGuideRows,
  type GuideTable,
  SIMPLIFIED_GUIDE_TABLES,
  toComparableRow,
} from '@idstitch/inspector/testing';
import { createApp } from './app.js';
import { Browser, type Visit } from './browser.js';

export type GuideFlow = GuideTable['flow'];

/** One of our events, placed in a guide table. */
export interface DemoRow {
  /** The guide's event number, or `null` for a logged-in event after the link (printed as `+`). */
  guideEvent: number | null;
  row: TimelineRow;
  /** The request path that tracked the event (`$pathname`). */
  path: string | null;
  /** Notes in the guide's terms (D1, U1…), worked out from the report and from what the browsers did. */
  notes: string[];
}

/** The state of one flow at one of the guide's tables. */
export interface DemoStep {
  /** 1-based position among the guide's tables. */
  number: number;
  table: GuideTable;
  /** The guide's placeholders and the real IDs standing in for them (`D1` → a UUID, `U1` → `user_ada`). */
  ids: Record<string, string>;
  /** The requests the browsers made in this step. */
  requests: string[];
  rows: DemoRow[];
  /** The numbered rows equal the guide's rows, and every `+` row resolves to its user without linking. */
  matches: boolean;
}

export interface DemoFlow {
  name: GuideFlow;
  /** What the reader should see in this flow's tables. */
  explanation: string;
  ids: Record<string, string>;
  steps: DemoStep[];
}

export interface DemoResult {
  /** Absolute path of the NDJSON file the LocalSink wrote. */
  file: string;
  /** Where the example app listened. */
  origin: string;
  flows: DemoFlow[];
  /** All eight steps, in the guide's order. */
  steps: DemoStep[];
  /** `reportFromFile(file)`: exactly what `pnpm idstitch report <file>` prints. */
  report: IdentityReport;
}

export const DEMO_USERS = { ada: 'user_ada', ben: 'user_ben', cleo: 'user_cleo' } as const;

const EXPLANATIONS: Record<GuideFlow, string> = {
  'New User Signup': [
    'A visitor browses the shop in browser 1 (device D1), then signs up as U1. Rows 1-2 were sent as',
    '$device:D1; once the Identified event links D1 ⇒ U1 they resolve to U1: "retroactively updated".',
  ].join('\n'),
  'Returning User': [
    'U1 comes back in browser 2: a new cookie jar, so a new device D2. D2 stays anonymous until U1 logs in;',
    'then rows 4-5 resolve to U1 too, and D1, D2 and U1 are one ID cluster.',
  ].join('\n'),
  'Multiple Users, One Device': [
    'One shared browser (3). U1 logs in, then logs out: idstitch resets, writing a new device D2 to the',
    'cookie. U2 browses and logs in on D2. D2 goes to U2, never to U1: two clusters, D1+U1 and D2+U2.',
  ].join('\n'),
};

/** What `expectedGuideRows` would have to say about a logged-in event after the link. */
function followUpRow(deviceId: string, userId: string): ComparableRow {
  return { deviceId, userId, distinctId: userId, retroactive: false, links: null };
}

/** Numbered rows equal the guide's; each `+` row is a plain logged-in event of a device already linked. */
export function stepMatchesGuide(step: Pick<DemoStep, 'table' | 'ids' | 'rows'>): boolean {
  const numbered = step.rows.filter((r) => r.guideEvent !== null).map((r) => toComparableRow(r.row));
  if (!isDeepStrictEqual(numbered, expectedGuideRows(step.table, step.ids))) return false;
  return step.rows.every(
    (r) =>
      r.guideEvent !== null ||
      (r.row.deviceId !== null &&
        r.row.userId !== null &&
        isDeepStrictEqual(toComparableRow(r.row), followUpRow(r.row.deviceId, r.row.userId))),
  );
}

/** Real IDs back to the guide's placeholders, for notes: `links 3f2c… ⇒ user_ada` → `Links D1 ⇒ U1`. */
function toPlaceholders(text: string, ids: Record<string, string>): string {
  let out = text;
  for (const [placeholder, id] of Object.entries(ids)) out = out.replaceAll(id, placeholder);
  return out;
}

/** `D1 and U1`, `D1, D2, and U1` (the guide's wording). */
function listPlaceholders(names: string[]): string {
  if (names.length <= 2) return names.join(' and ');
  return `${names.slice(0, -1).join(', ')}, and ${names.at(-1)}`;
}

function describeRequests(visits: readonly Visit[]): string[] {
  const chains: string[] = [];
  let chain = '';
  for (const visit of visits) {
    if (visit.path === '/identity') continue; // the demo asking for the device ID; tracks nothing
    const text = `${visit.method} ${visit.path}${visit.form ? ` (${visit.form})` : ''} → ${visit.status}`;
    chain = chain === '' ? text : `${chain} → ${text}`;
    if (visit.status < 300 || visit.status >= 400) {
      chains.push(chain);
      chain = '';
    }
  }
  if (chain !== '') chains.push(chain);
  return chains;
}

interface Example {
  origin: string;
  sink: LocalSink;
  flush: () => Promise<void>;
  identifyEventName: string;
  close: () => Promise<void>;
}

/** Starts the example shop on a free port, recording to `file` with a LocalSink (Simplified ID Merge). */
async function startExample(file: string): Promise<Example> {
  const sink = new LocalSink({ path: file, mode: 'simplified' });
  const { app, engine } = createApp({ idstitch: { sink, idMerge: 'simplified' } });
  const server = createServer(app);
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    sink,
    flush: () => engine.flush(),
    identifyEventName: engine.options.identifyEventName,
    close: async () => {
      await new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      });
      await engine.close(5_000);
    },
  };
}

/**
 * Plays the guide's three flows against the example app and returns every table, checked against the guide,
 * and the final report. Writes to `file` (which should be new: rows are matched to the guide by device).
 */
export async function runDemo(options: { file: string }): Promise<DemoResult> {
  const file = resolve(options.file);
  const example = await startExample(file);
  const steps: DemoStep[] = [];
  const flows: DemoFlow[] = [];
  /** Resolved cell of every event as last shown, to note "retroactively updated" where the guide does. */
  const shown = new Map<number, string>();
  /** Device ID → why it appeared, for the guide's "New device D2" / "Reset generated new ID: D2". */
  const deviceOrigins = new Map<string, 'new-browser' | 'reset'>();
  const browsers: Browser[] = [];
  const visitsSeen = new Map<Browser, number>();

  const newBrowser = () => {
    const browser = new Browser(example.origin);
    browsers.push(browser);
    return browser;
  };
  const deviceOf = async (browser: Browser, origin: 'new-browser' | 'reset'): Promise<string> => {
    const { deviceId } = await browser.identity();
    if (deviceId === undefined) throw new Error('the example app gave the browser no device ID');
    if (!deviceOrigins.has(deviceId)) deviceOrigins.set(deviceId, origin);
    return deviceId;
  };

  const snapshot = async (flow: DemoFlow, ids: Record<string, string>): Promise<void> => {
    const number = steps.length + 1;
    const table = SIMPLIFIED_GUIDE_TABLES[number - 1]!;
    if (table.flow !== flow.name) throw new Error(`guide table ${number} belongs to ${table.flow}`);
    await example.flush();
    const { messages, lineNumbers, unreadable } = await example.sink.read();
    const report = buildReport(messages, { mode: 'simplified', lineNumbers, unreadable });
    const devices = new Set(Object.keys(ids).flatMap((key) => (key.startsWith('D') ? [ids[key]!] : [])));
    const placed = report.timelines
      .flatMap((timeline) => timeline.rows.map((row) => ({ row, timeline })))
      .filter(({ row }) => row.deviceId !== null && devices.has(row.deviceId))
      .sort((a, b) => a.row.message - b.row.message);

    let guideEvent = 0;
    const devicesShown = new Set<string>();
    const firstDevice = ids.D1;
    const rows = placed.map(({ row, timeline }): DemoRow => {
      const isGuideRow = row.userId === null || row.event === example.identifyEventName;
      const cell = resolvedCell(row);
      const before = shown.get(row.message);
      const isNew = before === undefined;
      const notes: string[] = [];
      if (before !== undefined && before !== cell) notes.push('Retroactively updated');
      for (const note of row.notes) {
        if (note === 'retroactively updated') continue; // said above, in the step where it happened
        if (note.startsWith('links ')) {
          const link = `Links ${toPlaceholders(note.slice('links '.length), ids)}`;
          const members = timeline.ids.map((id) => toPlaceholders(id.replace(/^\$device:/, ''), ids)).sort();
          notes.push(isNew ? `${link}, ${listPlaceholders(members)} are inside one ID cluster` : link);
        } else notes.push(toPlaceholders(note, ids));
      }
      const deviceId = row.deviceId!;
      if (isNew && !devicesShown.has(deviceId) && deviceId !== firstDevice) {
        const name = toPlaceholders(deviceId, ids);
        notes.push(
          deviceOrigins.get(deviceId) === 'reset' ? `Reset generated new ID: ${name}` : `New device ${name}`,
        );
      }
      devicesShown.add(deviceId);
      if (!isGuideRow) notes.push('logged in, after the link (not in the guide)');
      shown.set(row.message, cell);
      const message = messages[row.message];
      const path = message?.kind === 'event' ? message.payload.properties.$pathname : undefined;
      return {
        guideEvent: isGuideRow ? ++guideEvent : null,
        row,
        path: typeof path === 'string' ? path : null,
        notes,
      };
    });

    const requests = browsers.flatMap((browser, i) => {
      const fresh = browser.visits.slice(visitsSeen.get(browser) ?? 0);
      visitsSeen.set(browser, browser.visits.length);
      return describeRequests(fresh).map((text) => `browser ${i + 1}: ${text}`);
    });
    const step: DemoStep = { number, table, ids: { ...ids }, requests, rows, matches: false };
    step.matches = stepMatchesGuide(step);
    steps.push(step);
    flow.steps.push(step);
  };

  const flow = (name: GuideFlow, ids: Record<string, string>): DemoFlow => {
    const created: DemoFlow = { name, explanation: EXPLANATIONS[name], ids, steps: [] };
    flows.push(created);
    return created;
  };

  try {
    // 1. New User Signup: browse anonymously on D1, sign up as U1 (the login redirects to the home page).
    const ada = DEMO_USERS.ada;
    const browser1 = newBrowser();
    await browser1.get('/');
    await browser1.get('/pricing');
    const signup = flow('New User Signup', { D1: await deviceOf(browser1, 'new-browser'), U1: ada });
    await snapshot(signup, signup.ids);
    await browser1.post('/login', { userId: ada });
    await snapshot(signup, signup.ids);

    // 2. Returning User: the same user in a second browser (new cookie jar, so new device D2).
    const browser2 = newBrowser();
    await browser2.get('/');
    await browser2.get('/pricing');
    const returning = flow('Returning User', {
      D1: signup.ids.D1!,
      D2: await deviceOf(browser2, 'new-browser'),
      U1: ada,
    });
    await snapshot(returning, returning.ids);
    await browser2.post('/login', { userId: ada });
    await snapshot(returning, returning.ids);

    // 3. Multiple Users, One Device: U1 logs in and out on browser 3; logout resets the device; U2 logs in.
    const browser3 = newBrowser();
    await browser3.get('/');
    const shared = flow('Multiple Users, One Device', {
      D1: await deviceOf(browser3, 'new-browser'),
      U1: DEMO_USERS.ben,
      U2: DEMO_USERS.cleo,
    });
    await snapshot(shared, { D1: shared.ids.D1!, U1: DEMO_USERS.ben });
    await browser3.post('/login', { userId: DEMO_USERS.ben });
    await snapshot(shared, { D1: shared.ids.D1!, U1: DEMO_USERS.ben });
    await browser3.post('/logout');
    await browser3.get('/pricing');
    shared.ids = {
      D1: shared.ids.D1!,
      D2: await deviceOf(browser3, 'reset'),
      U1: DEMO_USERS.ben,
      U2: DEMO_USERS.cleo,
    };
    await snapshot(shared, shared.ids);
    await browser3.post('/login', { userId: DEMO_USERS.cleo });
    await snapshot(shared, shared.ids);
  } finally {
    await example.close();
  }

  return { file, origin: example.origin, flows, steps, report: await reportFromFile(file) };
}

/** A pipe table padded so its columns line up, like the report's. */
function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((row) => (row[c] ?? '').length)));
  const line = (row: readonly string[]) => `| ${row.map((v, c) => v.padEnd(widths[c] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)];
}

/**
 * The columns of the guide's tables, named as `idstitch report` names them (its "resolved distinct_id" is the
 * guide's "distinct_id (set by Mixpanel)"), with the distinct_id idstitch sent beside it, then our notes.
 */
export const STEP_TABLE_HEADER = [
  '#',
  'Event',
  '$device_id',
  '$user_id',
  'distinct_id (sent)',
  'resolved distinct_id',
  'Notes',
];

export function formatStepTable(step: DemoStep): string[] {
  return renderTable(
    STEP_TABLE_HEADER,
    step.rows.map((r) => [
      r.guideEvent === null ? '+' : String(r.guideEvent),
      r.path === null ? r.row.event : `${r.row.event} ${r.path}`,
      r.row.deviceId ?? '',
      r.row.userId ?? '',
      r.row.distinctIdSent ?? '',
      resolvedCell(r.row),
      r.notes.join('; '),
    ]),
  );
}

const rule = (title: string) => `━━ ${title} ${'━'.repeat(Math.max(3, 100 - title.length))}`;

/** Everything `pnpm demo` prints. */
export function formatDemo(result: DemoResult): string {
  const out: string[] = [];
  out.push(
    `idstitch demo: Mixpanel's "Identifying Users (Simplified)" guide, replayed against the Express example`,
    `  app:    ${result.origin} (examples/express), driven over HTTP by 3 browsers, each with its own cookie jar`,
    `  events: LocalSink → ${result.file}`,
    '',
    "How to read the tables. Each is one of the guide's 8 tables, made from the events the app recorded,",
    "resolved the way Mixpanel's ID Merge does, with real IDs in place of D1, D2, U1, U2 (listed per flow).",
    '  - "#" is the guide\'s event number. The guide\'s row with both $device_id and $user_id is the event that',
    '    links them: here the "Identified" event idstitch sends when the login request finds a signed-in user.',
    '  - "+" rows are events after the link (the home page the browser lands on after logging in). They carry',
    '    both IDs and resolve to the user; the guide mentions them but its tables stop at the link.',
    '  - "resolved distinct_id" is the guide\'s "distinct_id (set by Mixpanel)": it reads "$device:D1 ⇒ U1" when',
    '    a later link re-attributed the event. "distinct_id (sent)" is what idstitch put on the event.',
  );
  for (const flow of result.flows) {
    out.push('', rule(flow.name), flow.explanation);
    out.push(
      `IDs: ${Object.entries(flow.ids)
        .map(([placeholder, id]) => `${placeholder} = ${id}`)
        .join(' · ')}`,
    );
    for (const step of flow.steps) {
      out.push('', `Guide table ${step.number}/8 · ${step.table.step}`);
      for (const request of step.requests) out.push(`  ${request}`);
      out.push(...formatStepTable(step));
      out.push(step.matches ? '✓ matches the guide row for row' : '✗ DIFFERS from the guide (see above)');
    }
  }
  out.push(
    '',
    rule('The report'),
    `The same as: pnpm idstitch report ${result.file}`,
    "One timeline per identity cluster: user_ada holds both browsers' devices; user_ben and user_cleo shared",
    'browser 3 but are separate clusters, because logging out reset the device.',
    '',
    formatReportText(result.report).trimEnd(),
    '',
  );
  const matching = result.steps.filter((step) => step.matches).length;
  out.push(
    matching === result.steps.length
      ? `All ${matching} tables match Mixpanel's guide row for row.`
      : `${result.steps.length - matching} of ${result.steps.length} tables differ from Mixpanel's guide.`,
  );
  return `${out.join('\n')}\n`;
}
