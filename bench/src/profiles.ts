/**
 * CPU profiles of the scenarios whose targets were missed: each is re-run once under `node --cpu-prof` (never
 * the measured run: the profiler slows the process down) and summarised from the `.cpuprofile`.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchConfig } from './config.js';
import { runPeer } from './delivery/run.js';
import { Ingest } from './ingest/client.js';
import { Child } from './lib/child.js';
import { log } from './lib/log.js';
import { diffProfiles, profileMarkdown, summarizeProfile } from './lib/profile.js';
import { autocannon, startServer, stopServer, visitorHeaders } from './overhead/run.js';
import type { Framework, Variant } from './overhead/variants.js';

function profileDir(root: string, name: string): { dir: string; execArgv: string[] } {
  const dir = join(root, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return { dir, execArgv: ['--cpu-prof', `--cpu-prof-dir=${dir}`] };
}

function onlyProfile(dir: string): string {
  const files = readdirSync(dir).filter((file) => file.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`no .cpuprofile written in ${dir}`);
  return join(dir, files[0] as string);
}

const relative = (path: string) => path.replace(/^.*\/bench\//, 'bench/');

async function profiledServer(
  root: string,
  framework: Framework,
  variant: Variant,
  seconds: number,
): Promise<{ file: string; requests: number }> {
  const { dir, execArgv } = profileDir(root, `overhead-${framework}-${variant}`);
  const handle = await startServer(framework, variant, execArgv);
  try {
    const headers = visitorHeaders();
    await autocannon(handle.url, 64, 2, headers);
    await autocannon(handle.url, 64, seconds, headers);
    const after = await handle.child.request({ type: 'mark' }, 'mark');
    await stopServer(handle);
    // The profile covers the whole process life, warm-up included: divide by every request it served.
    return { file: onlyProfile(dir), requests: after.requests as number };
  } finally {
    handle.child.kill();
    await handle.ingest.close();
  }
}

/** Where the added time per request goes: self time per request of idstitch's server minus bare's. */
export async function profileOverhead(
  root: string,
  framework: Framework,
  config: BenchConfig,
): Promise<string> {
  log(`profiling overhead: ${framework} bare vs idstitch`);
  const seconds = Math.min(8, config.overhead.durationSeconds);
  const bare = await profiledServer(root, framework, 'bare', seconds);
  const mine = await profiledServer(root, framework, 'idstitch', seconds);
  const diff = diffProfiles(mine.file, mine.requests, bare.file, bare.requests, 20);
  const summary = summarizeProfile(mine.file, 15);
  const us = (value: number) => `${value >= 0 ? '+' : ''}${value.toFixed(2)} µs`;
  return [
    `#### ${framework}: where the added CPU time per request goes`,
    '',
    `Profiles: \`${relative(mine.file)}\` (idstitch, ${mine.requests} requests) against \`${relative(bare.file)}\` ` +
      `(bare, ${bare.requests} requests), ${seconds} s of load each under \`--cpu-prof\`. Main-thread self time per ` +
      `request, idstitch minus bare: ${us(diff.totalDeltaUs)} in all (the profiler inflates absolute figures; ` +
      "the shares are what matter). `writev` is the response's socket write, the same call in both servers: its " +
      'larger share in the slower server is kernel time, also visible as the kernel part of the added CPU in the ' +
      'overhead tables.',
    '',
    '| package | added self time per request |',
    '| --- | ---: |',
    ...diff.packages.map((row) => `| ${row.package} | ${us(row.deltaUs)} |`),
    '',
    '| function | where | bare µs/req | idstitch µs/req | added |',
    '| --- | --- | ---: | ---: | ---: |',
    ...diff.rows.map(
      (row) =>
        `| \`${row.name}\` | ${row.where || row.package} | ${row.basePerUnitUs.toFixed(2)} | ` +
        `${row.perUnitUs.toFixed(2)} | ${us(row.deltaUs)} |`,
    ),
    '',
    '| idstitch function (inclusive: itself and what it calls) | where | µs per request |',
    '| --- | --- | ---: |',
    ...summary.topIdstitch
      .filter((row) => !/Middleware$/.test(row.name))
      .slice(0, 12)
      .map(
        (row) => `| \`${row.name}\` | ${row.where} | ${((row.totalMs * 1000) / mine.requests).toFixed(2)} |`,
      ),
  ].join('\n');
}

/** The idstitch delivery client under the profiler (main thread; gzip runs on libuv's pool and is not sampled). */
export async function profileDelivery(root: string, config: BenchConfig): Promise<string> {
  log('profiling delivery: idstitch');
  const { dir, execArgv } = profileDir(root, 'delivery-idstitch');
  const run = await runPeer('idstitch', config.delivery.events, 0, execArgv);
  if ('skipped' in run) throw new Error(`idstitch was skipped: ${run.skipped}`);
  const summary = summarizeProfile(onlyProfile(dir), 15);
  return [
    profileMarkdown(
      { ...summary, file: relative(summary.file) },
      `Delivery: idstitch's ${config.delivery.events} events under the profiler`,
    ),
    '',
    `Process CPU in that run: ${(run.cpuMs / 1000).toFixed(2)} s, of which the sampled main thread accounts for the ` +
      'rows above; the rest is gzip on the libuv thread pool (and the profiler).',
  ].join('\n');
}

/** The stalled run under the profiler: what each dropped `track()` still costs. */
export async function profileStall(root: string, config: BenchConfig): Promise<string> {
  log('profiling stall');
  const { dir, execArgv } = profileDir(root, 'stall');
  const ingest = await Ingest.start({ pinned: true });
  try {
    await ingest.stall(true);
    const child = new Child(
      'stall/client.js',
      [String(config.stall.events), String(ingest.port), 'stall'],
      [...execArgv, '--expose-gc'],
    );
    await child.waitFor('result', 600_000);
    await child.exit(10_000);
  } finally {
    await ingest.close();
  }
  const summary = summarizeProfile(onlyProfile(dir), 15);
  return profileMarkdown(
    { ...summary, file: relative(summary.file) },
    `Memory under stall: ${config.stall.events} \`track()\` calls while the ingest server does not answer`,
  );
}
