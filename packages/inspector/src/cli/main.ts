import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_LOCAL_PATH } from '@idstitch/core';
import { redisOutboxSource } from '../inspect/redis-source.js';
import { startInspector } from '../inspect/server.js';
import { localFileSource, type RecordSource } from '../inspect/source.js';
import { spoolSource } from '../inspect/spool-source.js';
import { formatReportJson, formatReportText, reportFromFile } from '../report.js';
import type { IdMergeMode } from '../resolver.js';

/** Where the CLI prints, and what relative paths resolve against. Tests swap these; the defaults are the process's. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  cwd: string;
  /** Ends `idstitch inspect`. Default: SIGINT or SIGTERM. */
  stop: AbortSignal;
}

const HELP = `Usage: idstitch <command> [options]

Commands:
  report [file]        Resolve identity over an NDJSON log the way Mixpanel's ID Merge does and print,
                       per user, the guides' event table, then the clusters and QA findings.
                       file defaults to ${DEFAULT_LOCAL_PATH} (where LocalSink writes).

  inspect [file]       Serve the inspector page: the identity graph, a timeline per person and the QA
                       findings, updated live while the app appends to the file (same default file).
                       With --spool or --redis it reads those instead, or as well when a file is given
                       (an event held in several is shown once, by $insert_id).

Options for report:
  --json               Print the report as JSON instead of tables.
  --mode <api>         ID Merge API to resolve with: simplified or original (default: guessed from the events).
  --fail-on-findings   Exit with 1 when the QA finds anything (for CI).

Options for inspect:
  --port <n>           Port to listen on (default 4747; 0 picks a free one).
  --host <address>     Interface to listen on (default 127.0.0.1). Another address needs --token.
  --token <secret>     Require this secret (open the page once with ?token=<secret>).
  --mode <api>         As for report.
  --spool <dir>        Also show what a MixpanelSink spool directory holds, not yet delivered (read-only).
  --redis <url>        Also show what a Redis outbox stream holds, not yet delivered (read-only;
                       needs @idstitch/redis and ioredis installed).
  --stream <key>       The outbox stream's key with --redis (default idstitch:outbox).

  -h, --help           Show this help.

Exit codes: 0 done, 1 file missing or unreadable (or findings with --fail-on-findings; inspect: cannot\nlisten), 2 bad usage.
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

interface InspectArgs {
  file: string;
  /** A file was named, or neither --spool nor --redis was given: read the LocalSink file. */
  fileGiven: boolean;
  spool: string | undefined;
  redis: string | undefined;
  stream: string | undefined;
  mode: IdMergeMode | undefined;
  port: number;
  host: string;
  token: string | undefined;
}

function parseInspectArgs(args: readonly string[]): InspectArgs | string {
  const parsed: InspectArgs = {
    file: DEFAULT_LOCAL_PATH,
    fileGiven: false,
    spool: undefined,
    redis: undefined,
    stream: undefined,
    mode: undefined,
    port: 4747,
    host: '127.0.0.1',
    token: undefined,
  };
  let fileGiven = false;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i]!;
    const option = /^(--[a-z-]+)(?:=(.*))?$/.exec(arg);
    if (
      option &&
      ['--mode', '--port', '--host', '--token', '--spool', '--redis', '--stream'].includes(option[1]!)
    ) {
      const name = option[1]!;
      const value = option[2] ?? args[++i];
      if (value === undefined || value === '') return `${name} needs a value`;
      if (name === '--mode') {
        if (value !== 'simplified' && value !== 'original') {
          return `--mode must be simplified or original, got "${value}"`;
        }
        parsed.mode = value;
      } else if (name === '--port') {
        const port = Number(value);
        if (!Number.isInteger(port) || port < 0 || port > 65_535) {
          return `--port must be a port number (0-65535), got "${value}"`;
        }
        parsed.port = port;
      } else if (name === '--host') parsed.host = value;
      else if (name === '--spool') parsed.spool = value;
      else if (name === '--redis') {
        if (!/^rediss?:\/\//.test(value)) {
          return `--redis must be a redis:// or rediss:// URL, got "${value}" (e.g. --redis redis://127.0.0.1:6379)`;
        }
        parsed.redis = value;
      } else if (name === '--stream') parsed.stream = value;
      else parsed.token = value;
    } else if (arg.startsWith('-') && arg !== '-') return `unknown option ${arg}`;
    else if (fileGiven) return `inspect takes one file, got "${parsed.file}" and "${arg}"`;
    else {
      parsed.file = arg;
      fileGiven = true;
    }
  }
  if (parsed.stream !== undefined && parsed.redis === undefined) {
    return '--stream names the outbox stream of --redis: pass --redis <url> too';
  }
  parsed.fileGiven = fileGiven || (parsed.spool === undefined && parsed.redis === undefined);
  return parsed;
}

function untilSignal(): AbortSignal {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return controller.signal;
}

async function runInspect(args: InspectArgs, io: CliIo): Promise<number> {
  const mode = args.mode === undefined ? {} : { mode: args.mode };
  let running: Awaited<ReturnType<typeof startInspector>>;
  const sources: RecordSource[] = [];
  try {
    if (args.fileGiven) sources.push(localFileSource(resolve(io.cwd, args.file), mode));
    if (args.spool !== undefined) sources.push(spoolSource(resolve(io.cwd, args.spool), mode));
    if (args.redis !== undefined) {
      sources.push(
        redisOutboxSource({
          redis: args.redis,
          ...mode,
          ...(args.stream === undefined ? {} : { stream: args.stream }),
        }),
      );
    }
    running = await startInspector({
      source: sources,
      port: args.port,
      host: args.host,
      ...(args.token === undefined ? {} : { token: args.token }),
    });
  } catch (error) {
    io.stderr(
      `idstitch: cannot start the inspector: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return 1;
  }
  const reading = sources.map((source) => `  reading ${source.label}\n`).join('');
  io.stdout(`idstitch inspector: ${running.url}\n${reading}  (updates live; Ctrl-C stops)\n`);
  const stop = io.stop; // read once: the default makes a signal that listens for SIGINT/SIGTERM
  if (!stop.aborted) await new Promise((stopped) => stop.addEventListener('abort', stopped, { once: true }));
  await running.close();
  return 0;
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
            'LocalSink writes one when your app runs without a Mixpanel token, as .idstitch/events.ndjson in ' +
            'the folder the app runs in (the examples write under examples/<name>/ and print the exact command): ' +
            'start the app and make a few requests, or pass that file: idstitch report path/to/events.ndjson\n'
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
    // Only `inspect` waits for a signal; the default listens for SIGINT/SIGTERM only when read.
    get stop() {
      return io.stop ?? untilSignal();
    },
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
  if (command === 'inspect') {
    const args = parseInspectArgs(rest);
    if (typeof args === 'string') {
      out.stderr(`idstitch: ${args}.\nRun idstitch --help for usage.\n`);
      return 2;
    }
    return runInspect(args, out);
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
