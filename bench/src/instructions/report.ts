/** Targets and tables of the instruction counts (issue's targets are stated in instructions per request). */
import { fmt, ratio, summarize } from '../lib/stats.js';
import { FRAMEWORK_LABELS, type Framework } from '../overhead/variants.js';
import { CATEGORIES, CATEGORY_LABELS, type CaseBreakdown, type Category } from './breakdown.js';
import { FLOOR_LABELS, FLOOR_PARTS } from './floor.js';
import type { InstructionResult } from './run.js';
import type { Visitor } from './visitors.js';

interface InstructionTarget {
  id: string;
  description: string;
  goal: string;
  measured: string;
  value: number;
  pass: boolean | undefined;
  detail?: string;
}

const k = (value: number) => `${fmt(value / 1000, 0)}k`;

export function perRequest(result: InstructionResult, key: string): number {
  return result.rows.find((row) => row.key === key)?.perUnit.median ?? Number.NaN;
}

function added(result: InstructionResult, framework: Framework, variant: string, visitor: Visitor): number {
  return (
    perRequest(result, `${framework}/${variant}/${visitor}`) -
    perRequest(result, `${framework}/bare/returning`)
  );
}

/** Issue 12: bare's instructions per request as a share of idstitch's (one `track()`), per visitor kind. */
export const REQUEST_GOALS: Record<Visitor, number> = { returning: 0.93, new: 0.85 };
/** Issue 12: what idstitch adds, as a share of what the hand-written `mixpanel` recipe adds. */
export const HANDWRITTEN_GOAL = 0.2;

export function instructionTargets(result: InstructionResult | undefined): InstructionTarget[] {
  if (!result || result.skipped) return [];
  const targets: InstructionTarget[] = [];
  const frameworks = [
    ...new Set(result.rows.flatMap((row) => (row.case.kind === 'app' ? [row.case.framework] : []))),
  ];
  for (const framework of frameworks) {
    const bare = perRequest(result, `${framework}/bare/returning`);
    for (const [visitor, goal] of Object.entries(REQUEST_GOALS) as Array<[Visitor, number]>) {
      const mine = perRequest(result, `${framework}/idstitch/${visitor}`);
      if (!Number.isFinite(mine)) continue;
      const share = ratio(bare, mine);
      targets.push({
        id: `instructions-${framework}-${visitor}`,
        description: `${FRAMEWORK_LABELS[framework]}, ${visitor} visitor: bare's instructions per request as a share of idstitch's (one \`track()\`)`,
        goal: `≥ ${goal.toFixed(2)}×`,
        measured: `${fmt(share, 2)}× (${k(bare)} vs ${k(mine)}; added ${k(mine - bare)} = ${fmt((mine - bare) / result.floor, 1)}× the floor)`,
        value: share,
        pass: share >= goal,
      });
    }
    const hand = added(result, framework, 'handwritten', 'returning');
    const mine = added(result, framework, 'idstitch', 'returning');
    if (Number.isFinite(hand) && Number.isFinite(mine)) {
      const share = ratio(mine, hand);
      targets.push({
        id: `instructions-vs-handwritten-${framework}`,
        description: `${FRAMEWORK_LABELS[framework]}, returning visitor: instructions idstitch adds as a share of what the hand-written \`mixpanel\` recipe adds`,
        goal: `≤ ${HANDWRITTEN_GOAL.toFixed(2)}×`,
        measured: `${fmt(share, 2)}× (${k(mine)} vs ${k(hand)}; idstitch's ${k(mine)} = ${fmt(mine / result.floor, 1)}× the floor)`,
        value: share,
        pass: share <= HANDWRITTEN_GOAL,
      });
    }
    for (const peer of ['posthog', 'segment']) {
      const theirs = added(result, framework, peer, 'returning');
      if (!Number.isFinite(theirs) || !Number.isFinite(mine)) continue;
      const share = ratio(mine, theirs);
      targets.push({
        id: `instructions-vs-${peer}-${framework}`,
        description: `${FRAMEWORK_LABELS[framework]}, returning visitor: instructions idstitch adds as a share of what ${peer === 'posthog' ? 'posthog-node' : '@segment/analytics-node'} adds`,
        goal: '< 1× (ahead of it)',
        measured: `${fmt(share, 2)}× (${k(mine)} vs ${k(theirs)})`,
        value: share,
        pass: share < 1,
      });
    }
  }
  return targets;
}

/** Half the range of a row's pair figures (every round's) as a share of its median: how far the pairs agree. */
function pairSpread(result: InstructionResult, key: string): string {
  const values = result.runs.filter((run) => run.key === key).flatMap((run) => run.pairs ?? [run.perUnit]);
  const summary = summarize(values);
  return summary.rounds > 1 ? `±${fmt((summary.spread * 100) / 2, 1)} %` : '';
}

function poolShare(result: InstructionResult, key: string): number {
  const values = result.runs.filter((run) => run.key === key).flatMap((run) => run.poolPairs ?? []);
  return summarize(values).median;
}

function roundsCell(result: InstructionResult, key: string): string {
  const row = result.rows.find((candidate) => candidate.key === key);
  if (!row || row.perUnit.rounds <= 1) return k(row?.perUnit.median ?? Number.NaN);
  return `${k(row.perUnit.median)} (${k(row.perUnit.min)}–${k(row.perUnit.max)})`;
}

const VARIANT_NAMES: Record<string, string> = {
  bare: 'bare',
  idstitch: 'idstitch + MixpanelSink, one `track()`',
  handwritten: 'hand-written: device cookie (cookie-parser or `ctx.cookies`) + uuid + `mixpanel.track`',
  posthog: 'hand-written cookie + posthog-node `capture()`',
  segment: 'hand-written cookie + @segment/analytics-node `track()`',
};

export function instructionTables(result: InstructionResult): string {
  if (result.skipped) return `Not measured: ${result.skipped}.`;
  const at = result.measured;
  const lines: string[] = [
    `${result.tool}, \`--tool=callgrind\`, node ${(result.nodeFlags ?? []).map((flag) => `\`${flag}\``).join(' ')}, ` +
      '`UV_THREADPOOL_SIZE=1`: user-space instructions of the main thread and of the one libuv pool thread (gzip), ' +
      "not V8's background compiler threads. Per request: after " +
      `${fmt(result.warmup)} warm-up requests, ${result.pairs ?? 1} pair(s) of phases of ${fmt(result.n)} and ` +
      `${fmt(2 * result.n)} requests, each phase ending with the SDK flushed (events serialised, gzipped, acknowledged) ` +
      `and a full GC; a pair gives (instructions of ${fmt(2 * result.n)} − instructions of ${fmt(result.n)}) / ${fmt(result.n)}, ` +
      'the figure is the median of the pairs. Driven in-process by a raw-socket loopback client on one keep-alive ' +
      "connection (its own cost is the `client` row, included in every row below). The pairs' column is half the " +
      `range of the pairs' figures. ${result.rounds} round(s); ${fmt(result.seconds)} s for this scenario` +
      (at
        ? `, on ${at.date.slice(0, 10)}, idstitch at commit ${at.commit ?? 'unknown'}${at.dirty?.length ? ` plus uncommitted changes to ${at.dirty.join(', ')}` : ''}.`
        : '.'),
    '',
    '### The floor: what one tracked request cannot avoid',
    '',
    '| part | instructions | pairs |',
    '| --- | ---: | ---: |',
    ...FLOOR_PARTS.map(
      (part) =>
        `| ${FLOOR_LABELS[part]} | ${roundsCell(result, `floor/${part}`)} | ${pairSpread(result, `floor/${part}`)} |`,
    ),
    `| **floor** (HMAC + UUID + serialise + gzip 6) | **${k(result.floor)}** | |`,
    `| the loopback client and Node's sockets alone (a raw \`net\` server answering) | ${roundsCell(result, 'client')} | ${pairSpread(result, 'client')} |`,
    '',
    '### Per request',
    '',
    '"Added" is the row minus bare of the same framework; "/ floor" is that as a multiple of the floor; "pool thread" is ' +
      'the share of the row counted on the libuv pool thread (gzip).',
    '',
    '| framework | variant | visitor | instructions | pairs | × bare | added to bare | added / floor | pool thread |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of result.rows) {
    if (row.case.kind !== 'app') continue;
    const { framework, variant, visitor } = row.case;
    const bare = perRequest(result, `${framework}/bare/returning`);
    const value = row.perUnit.median;
    const extra = value - bare;
    const isBare = variant === 'bare';
    lines.push(
      `| ${FRAMEWORK_LABELS[framework]} | ${VARIANT_NAMES[variant] ?? variant} | ${isBare ? 'any' : visitor} | ${roundsCell(result, row.key)} | ${pairSpread(result, row.key)} | ${fmt(ratio(value, bare), 2)} | ${isBare ? '' : k(extra)} | ${isBare ? '' : fmt(extra / result.floor, 1)} | ${fmt(Math.max(0, poolShare(result, row.key)) / 1000, 1)}k |`,
    );
  }
  return lines.join('\n');
}

/** A case's breakdown (the first round's that has one). */
function breakdownOf(result: InstructionResult, key: string): CaseBreakdown | undefined {
  return result.runs.find((run) => run.key === key && run.breakdown)?.breakdown;
}

const signed = (value: number) =>
  Math.round(value / 1000) === 0 ? '0' : `${value > 0 ? '+' : '−'}${k(Math.abs(value))}`;

/** Per function, what `mine` spends per unit beyond `base` (functions outside a case's top list count 0). */
export function addedFunctions(
  mine: CaseBreakdown,
  base: CaseBreakdown,
): Array<{ name: string; category: Category; added: number }> {
  const baseline = new Map(base.functions.map(([name, , value]) => [name, value]));
  const names = new Map<string, Category>();
  for (const [name, category] of [...mine.functions, ...base.functions]) names.set(name, category);
  const mineOf = new Map(mine.functions.map(([name, , value]) => [name, value]));
  return [...names]
    .map(([name, category]) => ({
      name,
      category,
      added: (mineOf.get(name) ?? 0) - (baseline.get(name) ?? 0),
    }))
    .sort((a, b) => b.added - a.added);
}

/** The categories ordered by what idstitch (returning visitor) adds to bare on `framework`, largest first. */
export function addedByCategory(
  result: InstructionResult,
  framework: Framework,
  visitor: Visitor = 'returning',
): Array<{ category: Category; added: number }> {
  const bare = breakdownOf(result, `${framework}/bare/returning`);
  const mine = breakdownOf(result, `${framework}/idstitch/${visitor}`);
  if (!bare || !mine) return [];
  return CATEGORIES.map((category) => ({
    category,
    added: mine.categories[category] - bare.categories[category],
  })).sort((a, b) => b.added - a.added);
}

/**
 * Where each framework's instructions go by category (bare, and what idstitch and the hand-written recipe add to
 * it), and the functions idstitch adds most to, from the counts' own dumps (breakdown.ts).
 */
export function breakdownTables(result: InstructionResult): string {
  const frameworks = [
    ...new Set(result.rows.flatMap((row) => (row.case.kind === 'app' ? [row.case.framework] : []))),
  ].filter((framework) => breakdownOf(result, `${framework}/bare/returning`));
  if (frameworks.length === 0) return '';
  const lines: string[] = [
    '### Where the added instructions go (callgrind, by category)',
    '',
    "From the same dumps as the counts: each function's self cost, grouped by what callgrind names it (breakdown.ts), " +
      'per request as (2n phase − n phase) / n, median of the pairs; main + pool thread. JavaScript compiled at run ' +
      "time has no symbol: idstitch's own optimised code cannot be told from the framework's, only read against bare. " +
      'Columns after bare are what each variant adds to it. The GC row moves by ±30k between runs (scavenges fall in ' +
      'or out of a phase); the other rows repeat within a few k.',
    '',
  ];
  for (const framework of frameworks) {
    const bare = breakdownOf(result, `${framework}/bare/returning`) as CaseBreakdown;
    const columns = (
      [
        ['idstitch', 'returning', 'idstitch, returning'],
        ['idstitch', 'new', 'idstitch, new'],
        ['handwritten', 'returning', 'hand-written'],
        ['posthog', 'returning', 'posthog-node'],
        ['segment', 'returning', 'segment'],
      ] as const
    ).flatMap(([variant, visitor, label]) => {
      const breakdown = breakdownOf(result, `${framework}/${variant}/${visitor}`);
      return breakdown ? [{ label, breakdown }] : [];
    });
    const total = (breakdown: CaseBreakdown) =>
      CATEGORIES.reduce((sum, category) => sum + breakdown.categories[category], 0);
    lines.push(
      `**${FRAMEWORK_LABELS[framework]}**`,
      '',
      `| per request | bare | ${columns.map((column) => `+ ${column.label}`).join(' | ')} |`,
      `| --- | ---: |${' ---: |'.repeat(columns.length)}`,
      ...CATEGORIES.filter(
        (category) =>
          Math.abs(bare.categories[category]) >= 500 ||
          columns.some(
            (column) => Math.abs(column.breakdown.categories[category] - bare.categories[category]) >= 500,
          ),
      ).map(
        (category) =>
          `| ${CATEGORY_LABELS[category]} | ${Math.abs(bare.categories[category]) < 500 ? '0' : k(bare.categories[category])} | ${columns
            .map((column) => signed(column.breakdown.categories[category] - bare.categories[category]))
            .join(' | ')} |`,
      ),
      `| **total** | **${k(total(bare))}** | ${columns.map((column) => `**${signed(total(column.breakdown) - total(bare))}**`).join(' | ')} |`,
      '',
    );
    const mine = breakdownOf(result, `${framework}/idstitch/returning`);
    if (mine) {
      const top = addedFunctions(mine, bare).slice(0, 10);
      lines.push(
        `The functions idstitch adds most to on ${FRAMEWORK_LABELS[framework]} (returning visitor): ${top
          .map((entry) => `\`${entry.name.slice(0, 80)}\` ${signed(entry.added)} (${entry.category})`)
          .join('; ')}.`,
        '',
      );
    }
  }
  return lines.join('\n');
}
