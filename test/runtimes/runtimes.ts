import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';

const here = import.meta.dirname;
const require = createRequire(join(here, 'package.json'));

/**
 * The runtime's own binary inside its npm package, not the `node_modules/.bin` shim: the shims run Node, which
 * starts the binary as its child, so a SIGTERM would stop the shim and leave the server running.
 */
const BINARIES = { bun: 'bin/bun.exe', deno: 'deno', workerd: 'bin/workerd' } as const;
function bin(name: keyof typeof BINARIES): string {
  try {
    return join(dirname(require.resolve(`${name}/package.json`)), BINARIES[name]);
  } catch {
    return join(here, 'node_modules', name, BINARIES[name]);
  }
}

/** A server running in a child process, on a loopback port. */
export interface RuntimeProcess {
  url: string;
  child: ChildProcess;
  /** Everything the child printed so far. */
  output(): string;
  /** SIGTERM, then the exit code (SIGKILL after that if it does not exit). */
  stop(): Promise<number | null>;
}

export interface Runtime {
  name: 'node' | 'bun' | 'deno' | 'workerd';
  /** Why the runtime cannot run here, or undefined when it can. */
  missing(): string | undefined;
  /**
   * Starts `entry` (a module for the runtime: a server for Node, Bun and Deno, a Workers module for workerd) with
   * `env` as its environment variables, or as a Worker's text bindings.
   */
  start(entry: string, env: Record<string, string>): Promise<RuntimeProcess>;
}

function versionOf(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: 'utf8', timeout: 30_000 }).trim();
  } catch {
    return undefined;
  }
}

function missingBinary(name: keyof typeof BINARIES): string | undefined {
  if (!existsSync(bin(name)))
    return `${name} is not installed (pnpm install in the repository installs it from npm)`;
  if (versionOf(bin(name), ['--version']) === undefined) return `${bin(name)} --version failed`;
  return undefined;
}

/** Follows the child's output; resolves with the first match of `pattern`, rejects if it exits first. */
function watch(child: ChildProcess) {
  let text = '';
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    text += chunk.toString();
    for (const waiter of waiters) waiter();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  return {
    output: () => text,
    waitFor: (pattern: RegExp) =>
      new Promise<RegExpExecArray>((found, fail) => {
        const check = () => {
          const match = pattern.exec(text);
          if (match) {
            waiters.delete(check);
            found(match);
          }
        };
        waiters.add(check);
        child.once('exit', (code, signal) =>
          fail(new Error(`exited (${code ?? signal}) before printing ${pattern}:\n${text}`)),
        );
        check();
      }),
  };
}

function stopper(child: ChildProcess) {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
}

/** Starts a server that prints `on http://localhost:PORT` or `listening on PORT` once it listens. */
async function startPrinting(command: string, args: string[], cwd: string, env: Record<string, string>) {
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env, PORT: '0', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = watch(child);
  try {
    const [, port] = await output.waitFor(/(?:localhost:|listening on )(\d+)/);
    return { url: `http://127.0.0.1:${port}`, child, output: output.output, stop: stopper(child) };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

const freePort = () =>
  new Promise<number>((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });

const accepts = (port: number) =>
  new Promise<boolean>((done) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });

/** The Workers module bundled for a neutral platform: nothing from Node, as on Cloudflare without nodejs_compat. */
async function bundleWorker(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    mainFields: ['module', 'main'],
    conditions: ['@idstitch/source', 'workerd', 'worker', 'browser'],
    logLevel: 'silent',
  });
}

const capnpString = (value: string) => JSON.stringify(value);

/** A workerd config: the bundle as the `main` service on `port`, with outbound fetch allowed to loopback. */
function workerdConfig(port: number, env: Record<string, string>): string {
  const bindings = Object.entries(env)
    .map(([name, value]) => `(name = ${capnpString(name)}, text = ${capnpString(value)})`)
    .join(', ');
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "outbound", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  compatibilityDate = "2025-09-01",
  bindings = [${bindings}],
  globalOutbound = "outbound",
);
`;
}

const repository = resolve(here, '../..');

export const runtimes: Runtime[] = [
  {
    name: 'node',
    missing: () => undefined,
    start: (entry, env) =>
      startPrinting(
        process.execPath,
        ['--import', 'tsx', '--conditions=@idstitch/source', entry],
        dirname(entry),
        env,
      ),
  },
  {
    name: 'bun',
    missing: () => missingBinary('bun'),
    start: (entry, env) =>
      startPrinting(bin('bun'), ['--conditions=@idstitch/source', entry], dirname(entry), env),
  },
  {
    name: 'deno',
    missing: () => missingBinary('deno'),
    start: (entry, env) =>
      startPrinting(
        bin('deno'),
        [
          'run',
          '--allow-net',
          '--allow-env',
          '--allow-read',
          // Source-first in the monorepo: `.js` specifiers name `.ts` files (published packages need no flag).
          '--sloppy-imports',
          '--conditions=@idstitch/source',
          entry,
        ],
        dirname(entry),
        { ...env, DENO_NO_UPDATE_CHECK: '1' },
      ),
  },
  {
    name: 'workerd',
    missing: () => missingBinary('workerd'),
    async start(entry, env) {
      const folder = mkdtempSync(join(tmpdir(), 'idstitch-workerd-'));
      await bundleWorker(entry, join(folder, 'worker.js'));
      const port = await freePort();
      writeFileSync(join(folder, 'config.capnp'), workerdConfig(port, env));
      const child = spawn(bin('workerd'), ['serve', join(folder, 'config.capnp'), '--verbose'], {
        cwd: repository,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const output = watch(child);
      const exited = new Promise<never>((_, fail) =>
        child.once('exit', (code, signal) =>
          fail(new Error(`workerd exited (${code ?? signal}):\n${output.output()}`)),
        ),
      );
      exited.catch(() => {});
      // workerd prints nothing when it listens: wait until the port takes connections.
      const ready = (async () => {
        while (!(await accepts(port))) await new Promise((next) => setTimeout(next, 50));
      })();
      try {
        await Promise.race([ready, exited]);
      } catch (error) {
        child.kill('SIGKILL');
        throw error;
      }
      const stop = stopper(child);
      return {
        url: `http://127.0.0.1:${port}`,
        child,
        output: output.output,
        stop: async () => {
          const code = await stop();
          rmSync(folder, { recursive: true, force: true });
          return code;
        },
      };
    },
  },
];
