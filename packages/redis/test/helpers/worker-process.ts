/**
 * Runs the real `idstitch-outbox-worker` bin as a child process, from the TypeScript sources (the
 * `@idstitch/source` condition plus tsx's loader, in one process, so SIGKILL kills the worker itself).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const bin = join(root, 'packages/redis/bin/idstitch-outbox-worker.mjs');
const tsxLoader = pathToFileURL(createRequire(join(root, 'package.json')).resolve('tsx')).href;

export interface WorkerProcess {
  readonly child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or signal) once the process ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a worker and resolves once it says it is delivering. */
export async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--conditions=@idstitch/source', '--import', tsxLoader, bin], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    child.once('exit', (code, signal) => done({ code, signal }));
  });
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`worker did not start within 20 s:\n${output}`)), 20_000);
    const check = () => {
      if (output.includes('delivering')) {
        clearTimeout(timer);
        ready();
      }
    };
    child.stdout?.on('data', check);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      fail(new Error(`worker exited with ${code} before starting:\n${output}`));
    });
  });
  return { child, output: () => output, exited };
}
