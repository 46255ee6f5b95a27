/**
 * `pnpm bench [--quick] [--rounds N] [--only instructions,overhead,delivery,stall,micro] [--frameworks express,koa,nest]
 * [--no-profile] [--note "text"] [--instruction-rounds N] [--report-only]`
 *
 * `--only instructions` into bench/ replaces section 0 and the instruction targets of the RESULTS.md and
 * results.json there and keeps the rest (instructions/splice.ts); `--report-only` does that from the instruction
 * counts already in results.json, without measuring anything.
 *
 * Runs every scenario, each SDK or server in a process of its own, and writes RESULTS.md and results.json:
 * the full run into bench/, `--quick` into bench/results/quick/ (CI: it must complete and write results; it
 * asserts no timing). Exits non-zero only when a scenario crashed or no results were written.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { type BenchConfig, configFor } from './config.js';
import { PEERS, type Peer } from './delivery/peers.js';
import { runDelivery } from './delivery/run.js';
import { runInstructions } from './instructions/run.js';
import { mergeTargets, replaceSection } from './instructions/splice.js';
import { DIST, PINNING } from './lib/child.js';
import { log } from './lib/log.js';
import { loadSnapshot, machineInfo } from './machine.js';
import { runMicro } from './micro/run.js';
import { runOverhead } from './overhead/run.js';
import { FRAMEWORKS, type Framework } from './overhead/variants.js';
import { profileDelivery, profileOverhead, profileStall } from './profiles.js';
import {
  type BenchResults,
  computeTargets,
  instructionMissSection,
  instructionsSection,
  renderMarkdown,
  type Target,
  targetsSection,
} from './report.js';
import { runStall } from './stall/run.js';

const SCENARIOS = ['instructions', 'overhead', 'delivery', 'stall', 'micro'] as const;
type Scenario = (typeof SCENARIOS)[number];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    only: { type: 'string' },
    frameworks: { type: 'string' },
    peers: { type: 'string' },
    'no-profile': { type: 'boolean', default: false },
    note: { type: 'string', multiple: true },
    out: { type: 'string' },
    'instruction-rounds': { type: 'string' },
    /** Instrument start-up and warm-up under callgrind too (the method before 2026-12-06 05:00; slower). */
    'instrument-warmup': { type: 'boolean', default: false },
    /** Overhead scenario: Express's diagnostic variants too (middleware alone, null sink, HTTPS ingest). */
    diagnostics: { type: 'boolean', default: false },
    /** Re-run the overhead scenario under --cpu-prof for each missed req/s target (secondary; off by default). */
    'profile-overhead': { type: 'boolean', default: false },
    /** Instruction scenario only: the case keys to measure (e.g. `express/idstitch/returning`). */
    cases: { type: 'string' },
    /** Re-render the whole RESULTS.md (targets, notes, tables) from the results.json in the output folder; run nothing. */
    'render-only': { type: 'boolean', default: false },
    /** Re-render section 0 and the instruction targets from the instruction counts in results.json; run nothing. */
    'report-only': { type: 'boolean', default: false },
  },
  allowPositionals: false,
});

const BENCH = join(DIST, '..');
const config: BenchConfig = configFor(values.quick === true, {
  rounds: values.rounds === undefined ? undefined : Number(values.rounds),
  instructionRounds:
    values['instruction-rounds'] === undefined ? undefined : Number(values['instruction-rounds']),
  instrumentWarmup: values['instrument-warmup'] === true,
  diagnostics: values.diagnostics === true,
});
if (values['no-profile']) config.profile = false;
// The quick run (CI) counts instructions only: a few seconds of req/s on a shared runner mean nothing.
const reportOnly = values['report-only'] === true;
const only = new Set(
  (reportOnly
    ? ['instructions']
    : (values.only?.split(',') ?? (config.quick ? ['instructions'] : SCENARIOS))) as Scenario[],
);
// Issue 12's frameworks by default; Fastify (no target yet) with `--frameworks express,koa,nest,fastify`.
const frameworks = (values.frameworks?.split(',') ??
  FRAMEWORKS.filter((name) => name !== 'fastify')) as Framework[];
/** Delivery scenario only: a subset of the SDKs (e.g. `--peers idstitch,mixpanel-import-batch` while profiling). */
const peers = (values.peers?.split(',') ?? PEERS) as Peer[];
const unknownPeer = peers.find((peer) => !PEERS.includes(peer));
if (unknownPeer) throw new Error(`--peers: unknown SDK "${unknownPeer}"; known: ${PEERS.join(', ')}`);
const outDir = values.out ?? (config.quick ? join(BENCH, 'results', 'quick') : BENCH);
const profileRoot = join(BENCH, 'results', 'profiles');

const started = performance.now();
const results: BenchResults = {
  config,
  machine: machineInfo(),
  load: [],
  pinning: PINNING,
  durationSeconds: 0,
  targets: [],
  profiles: [],
  notes: [...(values.note ?? [])],
};
const crashed: string[] = [];

async function scenario<T>(name: Scenario, run: () => Promise<T>): Promise<T | undefined> {
  if (!only.has(name)) return undefined;
  results.load.push(await loadSnapshot());
  log(`${name}: starting`);
  try {
    const result = await run();
    log(`${name}: done`);
    return result;
  } catch (error) {
    crashed.push(name);
    log(`${name}: CRASHED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    results.notes.push(
      `Scenario ${name} crashed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
    );
    return undefined;
  }
}

if (values['render-only']) {
  // A full run's results.json holds everything the report is made from: recompute the targets and write RESULTS.md.
  const saved = JSON.parse(readFileSync(join(outDir, 'results.json'), 'utf8')) as BenchResults;
  saved.targets = computeTargets(saved);
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(saved, null, 2)}\n`);
  try {
    execFileSync('pnpm', ['exec', 'biome', 'format', '--write', join(outDir, 'results.json')], {
      cwd: BENCH,
      stdio: 'ignore',
    });
  } catch {
    // biome not installed: the file is still valid JSON
  }
  writeFileSync(join(outDir, 'RESULTS.md'), renderMarkdown(saved));
  log(`re-rendered ${join(outDir, 'RESULTS.md')} from its results.json`);
  process.exit(0);
}
log(`idstitch bench (${config.quick ? 'quick' : 'full'}); results go to ${outDir}`);
results.instructions = reportOnly
  ? (JSON.parse(readFileSync(join(outDir, 'results.json'), 'utf8')) as Pick<BenchResults, 'instructions'>)
      .instructions
  : await scenario('instructions', () => runInstructions(config, frameworks, values.cases?.split(',')));
if (results.instructions && !reportOnly) {
  const { date, commit, dirty } = results.machine;
  results.instructions.measured = { date, commit, dirty };
  if (results.instructions.failures?.length) {
    crashed.push('instructions');
    for (const failure of results.instructions.failures)
      results.notes.push(`Instruction case failed: ${failure}`);
  }
}
results.overhead = await scenario('overhead', () => runOverhead(config, frameworks));
results.delivery = await scenario('delivery', () => runDelivery(config, peers));
results.stall = await scenario('stall', () => runStall(config));
results.micro = await scenario('micro', () => runMicro(config));
results.load.push(await loadSnapshot());
results.targets = computeTargets(results);

const segment = results.delivery?.runs.filter((run) => run.peer === 'segment') ?? [];
if (segment.some((run) => run.wallMs - run.producedMs > 5000)) {
  results.notes.push(
    '@segment/analytics-node: in some rounds `closeAndFlush()` resolved only when its 10 s flush timer sent the last ' +
      'partial batch (seen in its own timing: all but the last few events had arrived seconds earlier). Its events/s ' +
      'include that wait; its CPU figures do not depend on it.',
  );
}

if (config.profile && !config.quick) {
  const missed = new Set(
    results.targets.filter((target) => target.pass === false).map((target) => target.id),
  );
  const profile = async (target: string, make: () => Promise<string>) => {
    try {
      results.profiles.push({ target, markdown: await make() });
    } catch (error) {
      results.notes.push(
        `Profiling for ${target} failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
      );
    }
  };
  // The instruction targets' profile is section 0's breakdown (same dumps, no extra run); req/s is secondary.
  for (const framework of values['profile-overhead'] ? frameworks : []) {
    if (missed.has(`overhead-${framework}`)) {
      await profile(`overhead-${framework}`, () => profileOverhead(profileRoot, framework, config));
    }
  }
  if (missed.has('delivery-cpu') || missed.has('delivery-bytes')) {
    await profile('delivery', () => profileDelivery(profileRoot, config));
  }
  if (missed.has('stall-memory') || missed.has('stall-memory-growth'))
    await profile('stall-memory', () => profileStall(profileRoot, config));
}

results.durationSeconds = (performance.now() - started) / 1000;
mkdirSync(outDir, { recursive: true });
const jsonPath = join(outDir, 'results.json');
const mdPath = join(outDir, 'RESULTS.md');
// `--only instructions` into a folder that holds a previous run's results: replace the instruction counts and
// their targets there, keep every other section as that run wrote it (instructions/splice.ts).
const splice =
  only.size === 1 &&
  results.instructions !== undefined &&
  // The quick run's own folder holds nothing but instruction counts; with `--out bench` it splices too.
  (!config.quick || values.out !== undefined) &&
  existsSync(jsonPath) &&
  existsSync(mdPath);
if (splice && results.instructions) {
  const previous = JSON.parse(readFileSync(jsonPath, 'utf8')) as Record<string, unknown> & {
    targets?: Target[];
  };
  // Every target again, as this code defines them, from the previous run's figures and the new counts; a
  // results.json from an older generator that this code cannot read keeps its other targets as they were.
  let targets: Target[];
  try {
    targets = mergeTargets(
      computeTargets({ ...(previous as Partial<BenchResults>), instructions: results.instructions }),
      results.targets,
    );
  } catch {
    targets = mergeTargets(previous.targets ?? [], results.targets);
  }
  writeFileSync(
    jsonPath,
    `${JSON.stringify({ ...previous, instructions: results.instructions, targets }, null, 2)}\n`,
  );
  let markdown = readFileSync(mdPath, 'utf8');
  markdown = replaceSection(markdown, /^## Targets$/, targetsSection(targets), /^## Machine and run/);
  markdown = replaceSection(
    markdown,
    /^## 0\. Instructions per request/,
    instructionsSection(results.instructions),
    /^## 1\. /,
  );
  // The reasons for the missed instruction targets, from the same counts (section 0's breakdown).
  markdown = replaceSection(
    markdown,
    /^## Why the missed instruction targets were missed$/,
    instructionMissSection(results.instructions, targets) ||
      '## Why the missed instruction targets were missed\n\nNone was missed.',
    /^## (Why the missed targets were missed|Profiles of the missed targets|Notes)$/,
  );
  writeFileSync(mdPath, markdown);
} else {
  writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
}
// In the repository's own format, so that \`biome check\` (the lint step of \`pnpm test\`) accepts the committed file.
try {
  execFileSync('pnpm', ['exec', 'biome', 'format', '--write', jsonPath], { cwd: BENCH, stdio: 'ignore' });
} catch {
  // biome not installed: the file is still valid JSON
}
if (!splice) writeFileSync(mdPath, renderMarkdown(results));

const wrote = [jsonPath, mdPath].every((path) => existsSync(path) && statSync(path).size > 0);
const missing = [...only].filter((name) => !(results as unknown as Record<string, unknown>)[name]);
log(`wrote ${mdPath} and ${jsonPath} in ${results.durationSeconds.toFixed(0)} s`);
for (const target of results.targets) {
  log(
    `target ${target.id}: ${target.measured} (goal ${target.goal}) → ${target.pass === undefined ? 'not run' : target.pass ? 'pass' : 'FAIL'}`,
  );
}
if (crashed.length > 0 || missing.length > 0 || !wrote) {
  log(`FAILED: crashed ${crashed.join(', ') || 'none'}; without results ${missing.join(', ') || 'none'}`);
  process.exitCode = 1;
} else {
  log(`all ${only.size} scenarios completed and wrote results (no timing is asserted)`);
}
