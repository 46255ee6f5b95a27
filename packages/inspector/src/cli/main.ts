import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_LOCAL_PATH } from '@idstitch/core';
import { formatReportJson, formatReportText, reportFromFile } from '../report.js';
import type { IdMergeMode } from '../resolver.js';

/** Where the CLI prints, and what relative paths resolve against. Tests swap these; the defaults are the process's. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  cwd: string;
}

const HELP = `Usage: idstitch <command> [options]

Commands:
  report [file]        Resolve identity over an NDJSON log the way Mixpanel's ID Merge does and print,
                       per user, the guides' event table, then the clusters and QA findings.
                       file defaults to ${DEFAULT_LOCAL_PATH} (where LocalSink writes).

Options for report:
  --json               Print the report as JSON instead of tables.
  --mode <api>         ID Merge API to resolve with: simplified or original (default: guessed from the events).
  --fail-on-findings   Exit with 1 when the QA finds anything (for CI).

  -h, --help           Show this help.

Exit codes: 0 done, 1 file missing or unreadable (or findings with --fail-on-findings), 2 bad usage.
`;

interface ReportArgs {
  file: string;
  json: boolean;
  mode: IdMergeMode | undefined;
  failOnFindings: boolean;
}

function parseReportArgs(args: readonly string[]): ReportArgs | string {
  const parsed: ReportArgs = {
    file: DEFAULT_LOCAL_PATH,
    json: false,
    mode: undefined,
    failOnFindings: false,
  };
  let fileGiven = false;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i]!;
    if (arg === '--json') parsed.json = true;
    else if (arg === '--fail-on-findings') parsed.failOnFindings = true;
    else if (arg === '--mode' || arg.startsWith('--mode=')) {
      const value = arg === '--mode' ? args[++i] : arg.slice('--mode='.length);
      if (value !== 'simplified' && value !== 'original') {
        return `--mode must be simplified or original, got ${value === undefined ? 'nothing' : `"${value}"`}`;
      }
      parsed.mode = value;
    } else if (arg.startsWith('-') && arg !== '-') return `unknown option ${arg}`;
    else if (fileGiven) return `report takes one file, got "${parsed.file}" and "${arg}"`;
    else {
      parsed.file = arg;
      fileGiven = true;
    }
  }
  return parsed;
}

async function runReport(args: ReportArgs, io: CliIo): Promise<number> {
  const path = resolve(io.cwd, args.file);
  let report: Awaited<ReturnType<typeof reportFromFile>>;
  try {
    report = await reportFromFile(path, args.mode === undefined ? {} : { mode: args.mode });
  } catch (error) {
    const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
    io.stderr(
      code === 'ENOENT'
        ? `idstitch: no events file at ${path}.\n` +
            'LocalSink writes one when your app runs without a Mixpanel token: start the app and make a few ' +
            'requests, or pass a file: idstitch report path/to/events.ndjson\n'
        : `idstitch: cannot read ${path} (${code || String(error)}).\n`,
    );
    return 1;
  }
  io.stdout(args.json ? formatReportJson(report) : formatReportText(report));
  return args.failOnFindings && report.findings.length > 0 ? 1 : 0;
}

/**
 * The `idstitch` command line. Takes the arguments after the program name and returns the exit code;
 * prints through `io` (default: the process's stdout, stderr and working directory).
 */
export async function main(argv: readonly string[], io: Partial<CliIo> = {}): Promise<number> {
  const out: CliIo = {
    stdout: io.stdout ?? ((text) => process.stdout.write(text)),
    stderr: io.stderr ?? ((text) => process.stderr.write(text)),
    cwd: io.cwd ?? process.cwd(),
  };
  if (argv.includes('--help') || argv.includes('-h') || argv[0] === 'help') {
    out.stdout(HELP);
    return 0;
  }
  const [command, ...rest] = argv;
  if (command === undefined) {
    out.stderr(HELP);
    return 2;
  }
  if (command !== 'report') {
    out.stderr(`idstitch: unknown command "${command}".\n\n${HELP}`);
    return 2;
  }
  const args = parseReportArgs(rest);
  if (typeof args === 'string') {
    out.stderr(`idstitch: ${args}.\nRun idstitch --help for usage.\n`);
    return 2;
  }
  return runReport(args, out);
}

/**
 * True when this module is the program being run (`tsx packages/inspector/src/cli/main.ts`, `node dist/esm/cli/main.js`)
 * rather than imported, e.g. by the published bin, which calls `main` itself. Decided from the entry path
 * because `import.meta` does not compile in this package's CommonJS build.
 */
function runAsProgram(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  let path = entry;
  try {
    path = realpathSync(entry);
  } catch {
    // A path that cannot be resolved is matched as given.
  }
  return /[\\/]cli[\\/]main\.[cm]?[jt]s$/.test(path);
}

if (runAsProgram()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
