/**
 * `pnpm demo`: replays the three example flows of Mixpanel's "Identifying Users (Simplified)" guide against
 * this example app over real HTTP, records them with a LocalSink (no Mixpanel account needed) and prints the
 * guide's tables and the identity report. See `demo-flows.ts` for how our events map to the guide's rows.
 *
 *   pnpm demo                      writes .idstitch/demo.ndjson (under the folder pnpm was run from), replacing
 *                                  the previous run's file, so repeated runs leave one file
 *   pnpm demo --out <file.ndjson>  writes there instead (the file must not exist yet)
 *
 * Exit code 0 when every table matches the guide, 1 when one differs, 2 on bad usage.
 */
import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { formatDemo, runDemo } from './demo-flows.js';

/** The demo's own file, replaced by each run. */
const DEFAULT_FILE = '.idstitch/demo.ndjson';

function outputFile(args: readonly string[]): { file: string; replace: boolean } {
  // `pnpm demo` runs this script in examples/express; pnpm passes the folder it was started in as INIT_CWD.
  const base = process.env.INIT_CWD ?? process.cwd();
  const at = args.findIndex((arg) => arg === '--out' || arg.startsWith('--out='));
  if (at === -1) return { file: resolve(base, DEFAULT_FILE), replace: true };
  const arg = args[at]!;
  const value = arg === '--out' ? args[at + 1] : arg.slice('--out='.length);
  if (!value) throw new UsageError('--out needs a file path');
  return { file: resolve(base, value), replace: false };
}

class UsageError extends Error {}

async function main(args: readonly string[]): Promise<number> {
  let file: string;
  let replace: boolean;
  try {
    ({ file, replace } = outputFile(args.filter((arg) => arg !== '--')));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`demo: ${error.message}\n`);
    return 2;
  }
  // The default file is the demo's own: the previous run's events are replaced, not appended to.
  if (replace) rmSync(file, { force: true });
  else if (existsSync(file)) {
    process.stderr.write(`demo: ${file} already exists; the demo needs a fresh file\n`);
    return 2;
  }
  const result = await runDemo({ file });
  process.stdout.write(formatDemo(result));
  return result.steps.every((step) => step.matches) ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
