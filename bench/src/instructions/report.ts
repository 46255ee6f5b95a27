/** Targets and tables of the instruction counts (issue's targets are stated in instructions per request). */
import { fmt, ratio } from '../lib/stats.js';
import { FRAMEWORK_LABELS, type Framework } from '../overhead/variants.js';
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

export function instructionTargets(result: InstructionResult | undefined): InstructionTarget[] {
  if (!result || result.skipped) return [];
  const targets: InstructionTarget[] = [];
  const frameworks = [
    ...new Set(result.rows.flatMap((row) => (row.case.kind === 'app' ? [row.case.framework] : []))),
  ];
  for (const framework of frameworks) {
    const bare = perRequest(result, `${framework}/bare/returning`);
    for (const [visitor, goal] of [
      ['returning', 0.93],
      ['new', 0.85],
    ] as const) {
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
        goal: '≤ 0.20×',
        measured: `${fmt(share, 2)}× (${k(mine)} vs ${k(hand)})`,
        value: share,
        pass: share <= 0.2,
      });
    }
    for (const peer of ['posthog', 'segment']) {
      const theirs = added(result, framework, peer, 'returning');
      if (!Number.isFinite(theirs) || !Number.isFinite(mine)) continue;
      const share = ratio(mine, theirs);
      targets.push({
        id: `instructions-vs-${peer}-${framework}`,
        description: `${FRAMEWORK_LABELS[framework]}, returning visitor: instructions idstitch adds as a share of what ${peer === 'posthog' ? 'posthog-node' : '@segment/analytics-node'} adds`,
        goal: '≤ 0.20×',
        measured: `${fmt(share, 2)}× (${k(mine)} vs ${k(theirs)})`,
        value: share,
        pass: share <= 0.2,
      });
    }
  }
  return targets;
}

export function instructionTables(result: InstructionResult): string {
  if (result.skipped) return `Not measured: ${result.skipped}.`;
  const lines: string[] = [
    `${result.tool}, \`--tool=callgrind\`: user-space instructions of every thread of the process (V8, libuv's gzip ` +
      `workers). Per request = (instructions of ${fmt(2 * result.n)} requests − instructions of ${fmt(result.n)}) / ${fmt(result.n)}, ` +
      `after ${fmt(result.warmup)} warm-up requests, each phase ending with the SDK flushed and a full GC; driven in-process ` +
      'by a raw-socket loopback client on one keep-alive connection (its own cost is the `client` row, included in every ' +
      `row below). ${result.rounds} round(s); ${fmt(result.seconds)} s for this scenario.`,
    '',
    '### The floor: what one tracked request cannot avoid',
    '',
    '| part | instructions |',
    '| --- | ---: |',
    ...FLOOR_PARTS.map((part) => `| ${FLOOR_LABELS[part]} | ${k(perRequest(result, `floor/${part}`))} |`),
    `| **floor** (HMAC + UUID + serialise + gzip 6) | **${k(result.floor)}** |`,
    `| the loopback client and Node's sockets alone (a raw \`net\` server answering) | ${k(perRequest(result, 'client'))} |`,
    '',
    '### Per request',
    '',
    '| framework | variant | visitor | instructions | × bare | added to bare | added / floor |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: |',
  ];
  for (const row of result.rows) {
    if (row.case.kind !== 'app') continue;
    const { framework, variant, visitor } = row.case;
    const bare = perRequest(result, `${framework}/bare/returning`);
    const value = row.perUnit.median;
    const extra = value - bare;
    lines.push(
      `| ${FRAMEWORK_LABELS[framework]} | ${variant} | ${variant === 'bare' ? 'any' : visitor} | ${k(value)} | ${fmt(ratio(value, bare), 2)} | ${variant === 'bare' ? '' : k(extra)} | ${variant === 'bare' ? '' : fmt(extra / result.floor, 1)} |`,
    );
  }
  return lines.join('\n');
}
