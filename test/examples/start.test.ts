import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

/** Resolves with the first match of `pattern` in the child's output (stdout and stderr together). */
function waitFor(child: ChildProcess, output: { text: string }, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((found, fail) => {
    const check = () => {
      const match = pattern.exec(output.text);
      if (match) found(match);
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.on('exit', (code, signal) =>
      fail(new Error(`exited (${code ?? signal}) before printing ${pattern}:\n${output.text}`)),
    );
    check();
  });
}

/** True when something accepts connections on the port. */
const listening = (port: number) =>
  new Promise<boolean>((done) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });

/**
 * What a newcomer does: `pnpm --filter <example> start`, click, stop it the way a terminal or a process manager
 * does (SIGTERM to pnpm), then run the report command the example printed. pnpm must not leave the server
 * running on its port, must not call a clean stop a failure, and the report must find what the example wrote.
 */
describe.each([
  ['@idstitch/example-express', 'express'],
  ['@idstitch/example-koa', 'koa'],
  ['@idstitch/example-nestjs', 'nestjs'],
  ['@idstitch/example-fastify', 'fastify'],
  ['@idstitch/example-hono', 'hono'],
])('pnpm --filter %s start', (name, folder) => {
  it('prints http://localhost:PORT and the report command; SIGTERM to pnpm closes the server and exits 0', async () => {
    const child = spawn('pnpm', ['--filter', name, 'start'], {
      cwd: root,
      env: { ...process.env, PORT: '0', MIXPANEL_TOKEN: '', NODE_ENV: 'development' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = { text: '' };
    child.stdout.on('data', (chunk: Buffer) => {
      output.text += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output.text += chunk.toString();
    });
    try {
      const [, url, port] = await waitFor(child, output, /on (http:\/\/localhost:(\d+))\n/);
      const [, command, file] = await waitFor(child, output, /\n {2}(pnpm idstitch report (\S+))\n/);
      expect(file).toBe(resolve(root, 'examples', folder, '.idstitch/events.ndjson'));

      const response = await fetch(`${url}/pricing`);
      expect(response.status).toBe(200);

      const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(output.text).not.toMatch(/ERR_PNPM|ELIFECYCLE|failed/i);
      expect(await listening(Number(port))).toBe(false);

      const report = await run('pnpm', ['--silent', ...command!.split(' ').slice(1)], { cwd: root });
      expect(report.stdout).toContain(`identity report · ${file}`);
      expect(report.stdout).toMatch(/Page Viewed/);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
