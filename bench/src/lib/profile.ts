/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): where the time went, by function (self and
 * inclusive) and by package, in milliseconds and as a share of the sampled time (idle excluded).
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileRow {
  name: string;
  where: string;
  package: string;
  selfMs: number;
  selfShare: number;
  totalMs: number;
  totalShare: number;
}

export interface ProfileSummary {
  file: string;
  /** Sampled time that was not idle. */
  busyMs: number;
  topSelf: ProfileRow[];
  /** Inclusive time of the idstitch functions (where a call into idstitch spends its time). */
  topIdstitch: ProfileRow[];
  byPackage: Array<{ package: string; selfMs: number; share: number }>;
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

/** The package a script belongs to: an npm package, an idstitch workspace package, node itself, or the bench. */
export function packageOf(url: string, name: string): string {
  if (SPECIAL.has(name)) return name;
  if (!url) return '(native/V8)';
  if (url.startsWith('node:')) return 'node (built-in modules)';
  const workspace = /\/packages\/([^/]+)\/(dist|src)\//.exec(url);
  if (workspace) return `@idstitch/${workspace[1]}`;
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pnpm) return pnpm[1] as string;
  const plain = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (plain) return plain[1] as string;
  if (url.includes('/bench/dist/')) return 'bench harness';
  return url;
}

function shortWhere(frame: CallFrame): string {
  if (!frame.url) return '';
  const url = frame.url.replace(/^file:\/\//, '');
  const workspace = /\/(packages\/[^/]+\/(?:dist|src)\/.*)$/.exec(url);
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/(.*)$/.exec(url);
  const path = workspace?.[1] ?? pnpm?.[1] ?? url.replace(/^.*\/bench\/dist\//, 'bench/dist/');
  return `${path}:${frame.lineNumber + 1}`;
}

export function summarizeProfile(file: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const keyOf = (frame: CallFrame) =>
    `${frame.functionName || '(anonymous)'}\u0000${frame.url}\u0000${frame.lineNumber}`;
  const rows = new Map<string, { frame: CallFrame; self: number; total: number }>();
  const rowFor = (frame: CallFrame) => {
    const key = keyOf(frame);
    let row = rows.get(key);
    if (!row) {
      row = { frame, self: 0, total: 0 };
      rows.set(key, row);
    }
    return row;
  };
  // Inclusive time: a node's self plus its subtree, counted once per function even under recursion.
  const onStack = new Map<string, number>();
  const root = profile.nodes[0] as ProfileNode;
  const visit = (node: ProfileNode): number => {
    const key = keyOf(node.callFrame);
    onStack.set(key, (onStack.get(key) ?? 0) + 1);
    let subtree = selfUs.get(node.id) ?? 0;
    for (const child of node.children ?? []) {
      const next = byId.get(child);
      if (next) subtree += visit(next);
    }
    const row = rowFor(node.callFrame);
    row.self += selfUs.get(node.id) ?? 0;
    const depth = (onStack.get(key) ?? 1) - 1;
    if (depth === 0) {
      onStack.delete(key);
      row.total += subtree;
    } else onStack.set(key, depth);
    return subtree;
  };
  visit(root);
  let idle = 0;
  let all = 0;
  for (const row of rows.values()) {
    all += row.self;
    if (row.frame.functionName === '(idle)') idle += row.self;
  }
  const busy = Math.max(1, all - idle);
  const toRow = (row: { frame: CallFrame; self: number; total: number }): ProfileRow => ({
    name: row.frame.functionName || '(anonymous)',
    where: shortWhere(row.frame),
    package: packageOf(row.frame.url, row.frame.functionName),
    selfMs: row.self / 1000,
    selfShare: row.self / busy,
    totalMs: row.total / 1000,
    totalShare: row.total / busy,
  });
  const list = [...rows.values()].filter((row) => row.frame.functionName !== '(idle)');
  const topSelf = list
    .sort((a, b) => b.self - a.self)
    .slice(0, top)
    .map(toRow);
  const topIdstitch = list
    .filter((row) => packageOf(row.frame.url, row.frame.functionName).startsWith('@idstitch/'))
    .sort((a, b) => b.total - a.total)
    .slice(0, top)
    .map(toRow);
  const packages = new Map<string, number>();
  for (const row of list) {
    const name = packageOf(row.frame.url, row.frame.functionName);
    packages.set(name, (packages.get(name) ?? 0) + row.self);
  }
  const byPackage = [...packages.entries()]
    .map(([name, self]) => ({ package: name, selfMs: self / 1000, share: self / busy }))
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, 12);
  return { file, busyMs: busy / 1000, topSelf, topIdstitch, byPackage };
}

/** The summary as Markdown tables. */
export function profileMarkdown(summary: ProfileSummary, title: string): string {
  const pct = (share: number) => `${(share * 100).toFixed(1)} %`;
  const lines = [
    `#### ${title}`,
    '',
    `Profile: \`${summary.file}\`; ${summary.busyMs.toFixed(0)} ms of non-idle samples.`,
    '',
    '| package | self time | share |',
    '| --- | ---: | ---: |',
    ...summary.byPackage.map((row) => `| ${row.package} | ${row.selfMs.toFixed(0)} ms | ${pct(row.share)} |`),
    '',
    '| top functions by self time | where | self | share |',
    '| --- | --- | ---: | ---: |',
    ...summary.topSelf.map(
      (row) =>
        `| \`${row.name}\` | ${row.where || row.package} | ${row.selfMs.toFixed(0)} ms | ${pct(row.selfShare)} |`,
    ),
  ];
  if (summary.topIdstitch.length > 0) {
    lines.push(
      '',
      '| idstitch functions by inclusive time | where | inclusive | share |',
      '| --- | --- | ---: | ---: |',
      ...summary.topIdstitch.map(
        (row) => `| \`${row.name}\` | ${row.where} | ${row.totalMs.toFixed(0)} ms | ${pct(row.totalShare)} |`,
      ),
    );
  }
  return lines.join('\n');
}

export interface ProfileDiffRow {
  name: string;
  where: string;
  package: string;
  /** Self time per unit of work (request or event) in the profile of interest, in µs. */
  perUnitUs: number;
  /** The same in the baseline profile. */
  basePerUnitUs: number;
  deltaUs: number;
}

/** Self time by function, per unit of work, of `file` minus that of `baseFile`: where the added time goes. */
export function diffProfiles(
  file: string,
  units: number,
  baseFile: string,
  baseUnits: number,
  top = 15,
): { rows: ProfileDiffRow[]; packages: Array<{ package: string; deltaUs: number }>; totalDeltaUs: number } {
  const load = (path: string, count: number) => {
    const summary = summarizeProfile(path, Number.MAX_SAFE_INTEGER);
    const map = new Map<string, ProfileRow>();
    for (const row of summary.topSelf) map.set(`${row.name}\u0000${row.where}`, row);
    return { map, count };
  };
  const mine = load(file, units);
  const base = load(baseFile, baseUnits);
  const keys = new Set([...mine.map.keys(), ...base.map.keys()]);
  const rows: ProfileDiffRow[] = [];
  for (const key of keys) {
    const a = mine.map.get(key);
    const b = base.map.get(key);
    const row = (a ?? b) as ProfileRow;
    if (row.name === '(program)' || row.name === '(idle)') continue;
    const perUnitUs = ((a?.selfMs ?? 0) * 1000) / mine.count;
    const basePerUnitUs = ((b?.selfMs ?? 0) * 1000) / base.count;
    rows.push({
      name: row.name,
      where: row.where,
      package: row.package,
      perUnitUs,
      basePerUnitUs,
      deltaUs: perUnitUs - basePerUnitUs,
    });
  }
  const packages = new Map<string, number>();
  for (const row of rows) packages.set(row.package, (packages.get(row.package) ?? 0) + row.deltaUs);
  const totalDeltaUs = rows.reduce((sum, row) => sum + row.deltaUs, 0);
  return {
    rows: rows.sort((x, y) => y.deltaUs - x.deltaUs).slice(0, top),
    packages: [...packages.entries()]
      .map(([name, deltaUs]) => ({ package: name, deltaUs }))
      .sort((x, y) => y.deltaUs - x.deltaUs)
      .filter((entry) => Math.abs(entry.deltaUs) >= 0.05)
      .slice(0, 12),
    totalDeltaUs,
  };
}
